"""``Tuner``: search a program's variables with Optuna, live in the widgets.

Optuna does the search (samplers, studies, storage: an RDB URL lets several
kernels or machines add trials to one study). What this adds is the program
side of each trial: the trial's values are evaluated as ``overrides`` (so
concurrent trials and other runs never see each other's values), and, so a
class watching a shared session sees the search, they are also written to the
variables under the optimizer lock, with metadata ``{"source": "tuner",
"trial": n}``. At the end the best values are written with ``{"source":
"tuner", "study", "trial", "score"}`` (history and rollback work as for any
write); on an error or Ctrl-C the variables end at the best so far, or at
their original values when no trial completed, and the lease is released.
"""

from __future__ import annotations

import html
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..context import default_context
from ..errors import ValidationError
from ..running.runner import resolve_spec
from .evaluate import PreparedEvaluation, prepare_evaluation
from .evaluation import Evaluation
from .live import LiveView, short_value
from .space import build_space, grid_values

__all__ = ["Tuner", "TuningResult"]

_SAMPLERS = ("tpe", "random", "grid")
_LEASE_TTL_S = 30.0


@dataclass(frozen=True)
class TuningResult:
    """``best_params``/``best_score`` of the study, its ``trials`` (a DataFrame), the
    ``study`` itself, and ``interrupted`` (Ctrl-C ended the run early)."""

    best_params: dict[str, Any]
    best_score: float | None
    study: Any
    interrupted: bool = False
    best_evaluation: Evaluation | None = None

    @property
    def trials(self) -> Any:
        return self.study.trials_dataframe()

    def __repr__(self) -> str:
        state = " (interrupted)" if self.interrupted else ""
        return (
            f"<TuningResult {self.study.study_name}: best {self.best_score} "
            f"with {self.best_params} after {len(self.study.trials)} trials{state}>"
        )

    def _repr_html_(self) -> str:
        """The best values on top, then every trial (the best one in bold)."""
        return _trials_html(self)


def _trials_html(result: TuningResult, limit: int = 100) -> str:
    esc = html.escape
    trials = result.study.trials
    best = result.best_evaluation
    score = "-" if result.best_score is None else f"{result.best_score:.3f}"
    state = " &middot; interrupted" if result.interrupted else ""
    params = ", ".join(f"{k}={short_value(v)}" for k, v in result.best_params.items())
    head = (
        f"<div><b>{esc(result.study.study_name)}</b> &middot; best {score} with "
        f"<code>{esc(params)}</code> &middot; {len(trials)} trials{state}"
        f"{' &middot; ' + esc(best.summary()) if best is not None else ''}</div>"
    )
    names = sorted({name for t in trials for name in t.params})
    cells = ["trial", *names, "score", "state", "errors"]
    lines = ["<tr>" + "".join(f"<th>{esc(c)}</th>" for c in cells) + "</tr>"]
    best_number = None
    try:
        best_number = result.study.best_trial.number
    except ValueError:  # no completed trial
        pass
    for trial in trials[-limit:]:
        values = [
            trial.number,
            *(short_value(trial.params.get(n, "")) for n in names),
            "" if trial.value is None else f"{trial.value:.3f}",
            trial.state.name.lower(),
            trial.user_attrs.get("errors", ""),
        ]
        style = ' style="font-weight:bold"' if trial.number == best_number else ""
        lines.append(f"<tr{style}>" + "".join(f"<td>{esc(str(v))}</td>" for v in values) + "</tr>")
    more = len(trials) - limit
    tail = f"<div>... {more} earlier trials (use .trials)</div>" if more > 0 else ""
    return f'{head}<table class="dspex-trials">{"".join(lines)}</table>{tail}'


def _sampler(sampler: Any, seed: int | None, space: Mapping[str, Any]) -> Any:
    import optuna

    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "grid":
        return optuna.samplers.GridSampler(grid_values(space), seed=seed)
    raise ValidationError(
        f"sampler must be one of {_SAMPLERS} or an optuna.samplers.BaseSampler, got {sampler!r}"
    )


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)


class Tuner:
    """Tune ``spec``'s variables on ``devset`` against ``metric``; see the module docstring.

    Everything is checked here, before any trial: the program, the devset, the
    metric, the space (``VariableNotFound`` / ``ValidationError``), the sampler
    (a grid over a float needs a step or explicit values), ``n_trials`` and
    ``direction``. Nothing changes until :meth:`run`.
    """

    def __init__(
        self,
        spec: Any,
        devset: Any,
        metric: Any,
        *,
        context: Any = None,
        space: Mapping[str, Any] | None = None,
        sampler: Any = "tpe",
        n_trials: int = 20,
        storage: Any = None,
        study_name: str | None = None,
        direction: str = "maximize",
        num_threads: int | None = None,
        seed: int | None = None,
        display_progress: bool = True,
    ) -> None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise ValidationError(f"n_trials must be a positive int, got {n_trials!r}")
        if direction not in ("maximize", "minimize"):
            raise ValidationError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
        if study_name is not None and (not isinstance(study_name, str) or not study_name):
            raise ValidationError(f"study_name must be a non-empty string, got {study_name!r}")
        self.spec = resolve_spec(spec)
        self.context = default_context() if context is None else context
        self.devset, self.metric = devset, metric
        self.space = build_space(self.spec, self.context, space)
        self.sampler = _sampler(sampler, seed, self.space)
        self.n_trials, self.storage, self.direction = n_trials, storage, direction
        self.study_name = study_name or f"{self.spec.name or 'program'}-{uuid.uuid4().hex[:8]}"
        self.num_threads, self.display_progress = num_threads, display_progress
        #: The live view (progress bar, chart, trials table) of the current or last run.
        self.view: LiveView | None = None
        from .metrics import resolve_metric

        resolve_metric(metric)  # a bad metric fails now; its field is checked in run()

    # ------------------------------------------------------------------ running

    def run(self) -> TuningResult:
        """Run ``n_trials`` trials (fewer if the grid is exhausted or Ctrl-C is pressed)."""
        import optuna

        ctx = self.context
        prepared = prepare_evaluation(self.spec, self.devset, self.metric, ctx)
        names = list(self.space)
        original = {n: ctx.variable(n).value for n in names}
        # the view first: in a notebook it replaces Optuna's INFO lines, from the study's creation
        view = self.view = LiveView(self.n_trials, self.study_name, self.display_progress)
        try:
            study = optuna.create_study(
                storage=self.storage,
                sampler=self.sampler,
                study_name=self.study_name,
                direction=self.direction,  # type: ignore[arg-type]
                load_if_exists=True,
            )
            lease, renewer = self._lock(names)
        except BaseException:
            view.close()
            raise
        evaluations: dict[int, Evaluation] = {}
        interrupted = False
        try:
            objective = self._objective(prepared, evaluations, view, study)
            try:
                study.optimize(objective, n_trials=self.n_trials)
            except KeyboardInterrupt:
                interrupted = True
        finally:
            try:
                best = self._write_back(study, original)
            finally:
                if renewer is not None:
                    renewer.set()
                if lease is not None:
                    ctx.release_lock(lease)
                view.close()
        number = best.number if best is not None else None
        return TuningResult(
            dict(best.params) if best is not None else {},
            best.value if best is not None else None,
            study,
            interrupted,
            evaluations.get(number) if number is not None else None,
        )

    def _objective(
        self,
        prepared: PreparedEvaluation,
        evaluations: dict[int, Evaluation],
        view: LiveView,
        study: Any,
    ) -> Any:
        def objective(trial: Any) -> float:
            params = {n: _suggest(trial, n, d) for n, d in self.space.items()}
            metadata: dict[str, Any] = {"source": "tuner", "trial": trial.number}
            try:  # the best score so far travels with each trial's write (the panel shows it)
                metadata["best_score"] = float(study.best_value)
            except ValueError:  # no trial has completed yet
                pass
            self.context.update_many(params, metadata=metadata, source="tuner")
            evaluation = prepared.run(params, num_threads=self.num_threads, display_progress=False)
            if evaluation.interrupted:
                raise KeyboardInterrupt
            evaluations[trial.number] = evaluation
            trial.set_user_attr("errors", len(evaluation.errors))
            trial.set_user_attr("timed_out", len(evaluation.timed_out))
            trial.set_user_attr("usage", evaluation.usage)
            best = evaluation.score
            try:
                best = (
                    max(best, study.best_value)
                    if self.direction == "maximize"
                    else min(best, study.best_value)
                )
            except ValueError:  # no completed trial yet
                pass
            view.trial(trial.number, params, evaluation.score, best)
            return evaluation.score

        return objective

    def _lock(self, names: list[str]) -> tuple[Any, threading.Event | None]:
        """On a bridged context: lease the tuned variables and keep the lease renewed."""
        ctx = self.context
        if ctx.backend != "bridged":
            return None, None
        lease = ctx.acquire_lock(names, f"tuner:{self.study_name}", ttl_s=_LEASE_TTL_S)
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(_LEASE_TTL_S / 3):
                try:
                    lease.renew()
                except Exception:  # the run notices on its next write; nothing to do here
                    return

        threading.Thread(target=renew, name="dspex-tuner-lease", daemon=True).start()
        return lease, stop

    def _write_back(self, study: Any, original: dict[str, Any]) -> Any:
        """The best values (metadata says where they come from), or the originals."""
        try:
            best = study.best_trial
        except ValueError:
            best = None
        if best is None:
            self.context.update_many(
                original, metadata={"source": "tuner", "study": self.study_name}, source="tuner"
            )
            return None
        values = {n: best.params[n] for n in self.space if n in best.params}
        self.context.update_many(
            values,
            metadata={
                "source": "tuner",
                "study": self.study_name,
                "trial": best.number,
                "score": best.value,
            },
            source="tuner",
        )
        return best

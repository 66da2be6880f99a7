"""`make demo`: the example of SPEC §1, as written, offline.

It starts a local OpenAI-compatible test LM (``dspex_jupyter.testing.LMServer``)
and points the LM configuration at it through the ``DSPEX_LM_*`` environment
variables, so the example itself is exactly the SPEC's code. The first run
upgrades the context from LocalState to BridgedState (spawning a private
bridge server); ChainOfThought runs in the bridge's worker processes.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from dspex_jupyter.testing import LMServer  # noqa: E402


def main() -> int:
    with LMServer(latency=0.05) as lm:
        os.environ["DSPEX_LM_MODEL"] = "test-lm"
        os.environ["DSPEX_LM_API_BASE"] = lm.url
        os.environ["DSPEX_LM_API_KEY"] = "demo-key-not-secret"

        # ---------------------------------------------------------------- SPEC §1
        from dspex_jupyter import Context, Program, Variables
        from dspex_jupyter.modules import ChainOfThought  # bridged (DSPy, out of process)
        from dspex_jupyter.native import QueryClassifier  # native (in the kernel)

        class MyProgram(Program.Definition):  # the Python form of `use DSPex.Program`
            def build(self):
                return (
                    Program.new()
                    .defvariable("temperature", "float", initial=0.7)
                    .defvariable(
                        "model",
                        "choice",
                        initial="gpt-4",
                        constraints={"choices": ["gpt-4", "claude-3"]},
                    )
                    .chain(
                        [
                            QueryClassifier().bind_to_variable(
                                "model", as_="llm_model"
                            ),  # context stays local
                            ChainOfThought("question -> answer").bind_to_variable(
                                "temperature"
                            ),  # triggers the upgrade
                        ]
                    )
                )

        context = Context.start()  # begins on LocalState
        spec = MyProgram().build()  # pure data: printable, serializable, comparable
        print(spec)
        print("backend before the run:", context.backend)
        result = Program.run(
            spec, {"question": "What is DSPex?"}, context=context
        )  # upgrades to BridgedState
        print("backend after the run: ", context.backend)
        Variables.set(context, "temperature", 0.9)  # e.g. from an optimizer
        result2 = Program.run(spec, {"question": "How does it work?"}, context=context)  # uses 0.9
        context.stop()
        # ---------------------------------------------------------------- end of SPEC §1

        for label, run in (("run 1", result), ("run 2", result2)):
            print(f"\n{label}: {run!r}")
            print("  outputs:", json.dumps(run.outputs))
            for entry in run.trace:
                print(f"  {entry!r}  usage={entry.usage}  lm={entry.lm}")
        last = lm.requests[-1]
        print(f"\nlast LM request: model={last['model']} temperature={last['temperature']}")
        assert last["temperature"] == 0.9 and last["model"] == "gpt-4", last
        assert spec == Program.from_dict(json.loads(json.dumps(spec.to_dict())))
        print("demo OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

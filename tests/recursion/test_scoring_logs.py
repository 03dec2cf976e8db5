"""In-process scoring drops the lm-eval warnings it always triggers, and only those."""
import logging

from recursion import scoring


def test_expected_warnings_are_dropped_at_their_logger(caplog):
    scoring.quiet_expected_warnings()
    scoring.quiet_expected_warnings()  # idempotent: one filter per logger
    task = logging.getLogger("lm_eval.api.task")
    assert sum(isinstance(f, scoring._DropExpected) for f in task.filters) == 1
    with caplog.at_level(logging.WARNING):
        task.warning("collapse_gen_shakespeare: Custom kwargs can be passed to `--metadata` in console")
        logging.getLogger("lm_eval.models.huggingface").warning("Passed an already-initialized model through `pretrained`")
        task.warning("collapse_gen_shakespeare: a real problem")
    assert [r.getMessage() for r in caplog.records] == ["collapse_gen_shakespeare: a real problem"]

"""Where Python has no ``fcntl`` (Windows), the library imports and the output lock still holds.

The check runs in a fresh interpreter in which ``import fcntl`` fails, as it does on Windows.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

WITHOUT_FCNTL = textwrap.dedent("""
    import os
    import sys
    from pathlib import Path

    sys.modules["fcntl"] = None  # `import fcntl` now raises ImportError, as on Windows

    import riskmodel
    import riskmodel.cli
    import riskmodel.plan._job
    import riskmodel.bulletin._render
    import riskmodel.scoring._job
    import riskmodel.synthetic._generate
    from riskmodel.ledger import _outputs as outputs
    from riskmodel.errors import OutputExistsError
    from riskmodel.ledger import LOCK_NAME, MonthOutput, OutputLock

    assert outputs.fcntl is None

    def refused(out):
        try:
            OutputLock(out).__enter__()
        except OutputExistsError as err:
            return str(err)
        raise AssertionError("a second run was let into a locked folder")

    out = Path(sys.argv[1]) / "out"
    with OutputLock(out):
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        message = refused(out)
        assert "another run" in message and str(os.getpid()) in message, message
        assert "\\n" not in message
    # Released: the lock file is gone, and so is the folder the lock made for a run that
    # wrote nothing.
    assert not out.exists()

    # A folder that was there stays; a month written under the lock is in place afterwards.
    out.mkdir()
    with OutputLock(out):
        with MonthOutput(out, "2024-06") as month:
            (month.staging / "scores.txt").write_text("x")
            month.publish()
    assert sorted(p.name for p in out.iterdir()) == ["2024-06"]
    with OutputLock(out):
        pass

    # A killed run leaves its lock file here: the next run is refused and told what to do.
    (out / LOCK_NAME).write_text("424242\\n")
    message = refused(out)
    assert "pid 424242" in message and "delete it" in message, message
    (out / LOCK_NAME).unlink()
    with OutputLock(out):
        pass
    print("ok")
""")


def test_the_library_imports_and_locks_without_fcntl(tmp_path):
    run = subprocess.run([sys.executable, "-c", WITHOUT_FCNTL, str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "ok"

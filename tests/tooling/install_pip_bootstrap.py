"""Place the offline get-pip stand-in where the installed ansible-test looks for its cached copy.

Usage: python install_pip_bootstrap.py HOME_DIR   (run with the interpreter that has ansible-test)
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys

import ansible_test


def pip_version() -> str:
    source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    found = re.search(r"pip='([^']+)'", source.read_text(encoding="utf-8"))
    if not found:
        raise SystemExit(f"cannot find ansible-test's pip version in {source}")
    return found.group(1)


def main() -> None:
    home = pathlib.Path(sys.argv[1])
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"get_pip_{pip_version().replace('.', '_')}.py"
    shutil.copyfile(pathlib.Path(__file__).with_name("get_pip_offline.py"), target)
    print(f"ansible-test pip bootstrap: {target}")


if __name__ == "__main__":
    main()

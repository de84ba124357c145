"""Offline stand-in for the ``get-pip.py`` bootstrap that ansible-test downloads.

ansible-test fetches ``get-pip-<version>.py`` from a host these machines cannot reach and caches it
as ``~/.ansible/test/cache/get_pip_<version>.py``. ``install_pip_bootstrap.py`` puts this file there
instead. Like get-pip.py it takes pip-install arguments (e.g. ``pip==24.2 --no-setuptools``):
it seeds pip from the interpreter's bundled ``ensurepip`` wheel, then installs the requested pip
from the package index, which is reachable.
"""

from __future__ import annotations

import subprocess
import sys

# get-pip.py options that plain ``pip install`` does not know.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)


if __name__ == "__main__":
    main()

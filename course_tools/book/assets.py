"""Local copies of the JavaScript the site and the slides need: no CDN at view time.

reveal.js (the 4.x line that nbconvert's ``reveal`` template expects; npm's
latest is newer), MathJax 3 and require.js (nbconvert's slides load reveal.js
through it) are installed once from npm, at pinned versions, into
``.cache/book/node_modules`` and copied next to the built pages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["NPM_PACKAGES", "REVEAL_THEME", "node_modules", "copy_mathjax", "copy_reveal", "copy_requirejs"]

#: npm packages and the exact versions used (nbconvert 7's reveal template targets reveal.js 4).
NPM_PACKAGES = {"reveal.js": "4.6.0", "mathjax": "3.2.2", "requirejs": "2.3.8"}


def node_modules(root: str | Path = ".") -> Path:
    """``.cache/book/node_modules`` with :data:`NPM_PACKAGES` installed (runs ``npm install`` once)."""
    prefix = Path(root).resolve() / ".cache" / "book"
    nm = prefix / "node_modules"
    wanted = [nm / name / "package.json" for name in NPM_PACKAGES]
    if all(p.is_file() and f'"version": "{NPM_PACKAGES[p.parent.name]}"' in p.read_text() for p in wanted):
        return nm
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm is missing: install Node.js (https://nodejs.org) to build the site and slides "
                           f"with local copies of {', '.join(NPM_PACKAGES)}.")
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--silent", "--no-audit", "--no-fund", "--no-save", "--prefix", str(prefix),
           *(f"{k}@{v}" for k, v in NPM_PACKAGES.items())]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0 or not all(p.is_file() for p in wanted):
        raise RuntimeError(f"npm install failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return nm


def _copytree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)


def copy_mathjax(dest: str | Path, root: str | Path = ".") -> Path:
    """MathJax 3 (``tex-chtml-full.js`` and its web fonts) into ``dest``; the script's path."""
    nm, dest = node_modules(root), Path(dest)
    es5 = nm / "mathjax" / "es5"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(es5 / "tex-chtml-full.js", dest / "tex-chtml-full.js")
    _copytree(es5 / "output" / "chtml" / "fonts" / "woff-v2", dest / "output" / "chtml" / "fonts" / "woff-v2")
    shutil.copy(nm / "mathjax" / "LICENSE", dest / "LICENSE")
    return dest / "tex-chtml-full.js"


#: The reveal.js theme the decks use (several other themes load Google Fonts from the web).
REVEAL_THEME = "white"


def copy_reveal(dest: str | Path, root: str | Path = ".") -> Path:
    """reveal.js (``dist/``: the script, its CSS, the :data:`REVEAL_THEME` theme and its local
    fonts) and the speaker-notes plugin into ``dest`` (the ``reveal_url_prefix``)."""
    nm, dest = node_modules(root), Path(dest)
    rev = nm / "reveal.js"
    (dest / "dist" / "theme").mkdir(parents=True, exist_ok=True)
    for name in ("reveal.js", "reveal.css", "reset.css"):
        shutil.copy(rev / "dist" / name, dest / "dist" / name)
    shutil.copy(rev / "dist" / "theme" / f"{REVEAL_THEME}.css", dest / "dist" / "theme" / f"{REVEAL_THEME}.css")
    _copytree(rev / "dist" / "theme" / "fonts" / "source-sans-pro", dest / "dist" / "theme" / "fonts" / "source-sans-pro")
    _copytree(rev / "plugin" / "notes", dest / "plugin" / "notes")
    for junk in dest.rglob("*.map"):
        junk.unlink()
    shutil.copy(rev / "LICENSE", dest / "LICENSE")
    return dest


def copy_requirejs(dest: str | Path, root: str | Path = ".") -> Path:
    """require.js into ``dest``; the script's path."""
    nm, dest = node_modules(root), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(nm / "requirejs" / "require.js", dest / "require.js")
    return dest / "require.js"

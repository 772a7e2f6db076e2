"""Writing an export folder: templates with @KEY@ placeholders, and an all-or-nothing swap."""
import os
import re
import shutil
import tempfile
from pathlib import Path

from tfuav.errors import TfuavError


def render(template, values):
    """The text of `template` (a Path) with every @KEY@ replaced by values[KEY]."""
    def sub(match):
        key = match.group(1)
        if key not in values:
            raise TfuavError(f"{template}: unknown placeholder @{key}@")
        return values[key]
    return re.sub(r"@([A-Z_]+)@", sub, template.read_text())


def write_folder(folder, files):
    """Write {relative path: str or bytes} into a temporary sibling folder, then swap it in:
    an interrupted export never leaves a half-written folder under the real name."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for rel, content in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is a normal folder
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        tmp.rename(folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

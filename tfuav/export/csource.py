"""C source text for byte arrays and identifiers (deterministic: same bytes, same text)."""
import re

BYTES_PER_LINE = 16


def c_identifier(name):
    """A valid lower-case C identifier from a model or file name ('vww-96.int8' -> 'vww_96_int8')."""
    ident = re.sub(r"[^0-9a-zA-Z_]", "_", str(name)).strip("_").lower() or "model"
    return f"m_{ident}" if ident[0].isdigit() else ident


def c_string(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def byte_lines(data, indent="    "):
    """The bytes as lines of '0x12, 0x34, ...' (no trailing comma after the last byte)."""
    data = bytes(data)
    lines = []
    for start in range(0, len(data), BYTES_PER_LINE):
        chunk = data[start:start + BYTES_PER_LINE]
        lines.append(indent + ", ".join(f"0x{b:02x}" for b in chunk))
    return ",\n".join(lines)

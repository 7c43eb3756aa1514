"""Personal data stops here: what reading keeps of 证件号码, 姓名, phones and bank accounts.

Right after a file is parsed, and before anything is cached or handed on, its personal fields
are replaced: names, phones and bank accounts are dropped (the report only says that their
columns were seen), and each 证件号码 becomes

- ``id_birth``: its digits 7–14 (the birth date it carries, read when 出生日期 is blank or
  unreadable), and
- a pseudonym in ``person_id``: SipHash-2-4 of the number under a secret key, so that the same
  person is matched across the month's person table, migrant table and warnings.

The key is random; with a cache it is kept in the cache folder (``key``, readable by its owner
only) so that cached files and new ones share it, and deleting the cache folder unlinks every
pseudonym. Without a cache a new key is drawn for each read. No personal value is written to
any file, the cache included.
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

KEY_NAME = "key"
_ALPHABET = string.ascii_letters + string.digits + string.punctuation


def new_key() -> str:
    """A random 16-character key (SipHash's 128 bits, drawn from 94 printable characters)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def cache_key(folder: Path) -> str:
    """The key kept in a cache folder, created (owner-only) when absent or unreadable."""
    path = folder / KEY_NAME
    try:
        key = path.read_text(encoding="ascii")
        if len(key) == 16:
            return key
    except (OSError, UnicodeDecodeError):
        pass
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = new_key()
    tmp = folder / f".{KEY_NAME}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    os.replace(tmp, path)
    return key


def pseudonymised(frame: pd.DataFrame, personal: list[str], key: str) -> pd.DataFrame:
    """The frame with its personal fields replaced as the module says.

    Examples
    --------
    >>> frame = pd.DataFrame({"person_id": ["53012319991231002x", "", "123"],
    ...                       "name": ["张三", "李四", "王五"]}, dtype="string")
    >>> out = pseudonymised(frame, ["person_id", "name"], key="k" * 16)
    >>> list(out.columns), out["id_birth"].tolist()
    (['person_id', 'id_birth'], ['19991231', '', ''])
    >>> out["person_id"].iloc[0] != "53012319991231002x", out["person_id"].iloc[1]
    (True, '')
    """
    out = frame.drop(columns=[f for f in personal if f != "person_id" and f in frame])
    if "person_id" not in out:
        return out
    ids = pa.array(out["person_id"].array, type=pa.large_string(), from_pandas=True)
    ids = pc.utf8_upper(pc.fill_null(ids, ""))
    digits = pc.utf8_slice_codeunits(ids, 6, 14)
    # Eight characters whenever the number has eighteen: all of them ASCII digits.
    has_birth = pc.and_(pc.equal(pc.utf8_length(ids), 18), pc.ascii_is_decimal(digits))
    blank = pc.equal(ids, "").to_numpy(zero_copy_only=False)
    # Numbers are nearly all distinct: hashing each is cheaper than factorising first (the
    # hashes are the same either way).
    hashed = pd.util.hash_array(np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object),
                                hash_key=key, categorize=False)
    text = pc.cast(pa.array(hashed, type=pa.uint64()), pa.large_string())
    text = pc.if_else(pa.array(blank), "", text)
    out["person_id"] = pd.Series(pd.array(text, dtype=pd.StringDtype()), index=out.index)
    out.insert(out.columns.get_loc("person_id") + 1, "id_birth",
               pd.Series(pd.array(pc.if_else(has_birth, digits, ""), dtype=pd.StringDtype()),
                         index=out.index))
    return out

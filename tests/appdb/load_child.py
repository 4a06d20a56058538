"""A child process that loads a dataset into app-db: ``load_child.py URI CSV TARGET NAME [--hang]``.

Prints ``version created`` when done. With ``--hang`` it prints ``writing`` after the first chunk is in the open
transaction and then waits to be killed, so a test can kill a load mid-way.
"""

from __future__ import annotations

import sys
import time

from mlplatform.appdb.datasets import content_hash, store_chunks, store_dataset
from mlplatform.appdb.engine import engine_for
from mlplatform.datasets.sources import read_source


def main(uri: str, csv: str, target: str, name: str, hang: bool) -> None:
    engine = engine_for(uri)
    data = read_source(csv, target, name)
    if not hang:
        stored = store_dataset(engine, data)
        print(stored.version, stored.created, flush=True)
        return

    def chunks():
        half = len(data.frame) // 2
        yield data.frame.iloc[:half]
        print("writing", flush=True)
        time.sleep(600)
        yield data.frame.iloc[half:]

    store_chunks(engine, data.name, data.target, data.task_type, data.source, content_hash(data), chunks())


if __name__ == "__main__":
    main(*sys.argv[1:5], hang="--hang" in sys.argv)

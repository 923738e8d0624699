"""The peers of `cargo xtask bench phi`: one Clements decomposition of a JSON matrix (rows of
[re, im]) per process, timed around the decomposition call alone, printed as one JSON line:
{"decompose_s": t}. A peer that cannot be imported prints {"unavailable": "why"} and exits 3."""
import json
import sys
import time

import numpy as np


def load(path):
    with open(path) as f:
        rows = json.load(f)
    return np.array([[complex(re, im) for re, im in row] for row in rows], dtype=np.complex128)


def main():
    peer, path = sys.argv[1], sys.argv[2]
    u = load(path)
    try:
        if peer == "sf":
            from strawberryfields.decompositions import rectangular

            f = lambda: rectangular(u)
        elif peer == "piquasso":
            import piquasso as pq
            from piquasso.decompositions.clements import clements

            connector = pq.NumpyConnector()
            f = lambda: clements(u, connector)
        elif peer == "interferometer":
            import interferometer as itf

            f = lambda: itf.square_decomposition(u)
        else:
            raise ValueError(f"unknown peer {peer}")
    except Exception as e:  # the harness reports it, it does not fake a figure
        print(json.dumps({"unavailable": f"{type(e).__name__}: {e}"}))
        sys.exit(3)
    t = time.perf_counter()
    f()
    print(json.dumps({"decompose_s": time.perf_counter() - t}))


if __name__ == "__main__":
    main()

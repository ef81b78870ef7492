"""Fork server for the kill-while-saving test: forks writers that rewrite a checkpoint in a loop until killed.

Usage: python kill_saver.py VERSIONS

Imports torch once and builds VERSIONS versions of ``custom_cnn`` (version v: weights from seed v), then reads
commands from stdin, one per line, and answers on stdout:

``fork MODE TARGET``  fork a writer and answer ``pid N``. The writer rewrites TARGET forever, cycling through
                      the versions (starting at a random one), with MODE ``atomic`` (``encdec.save_weights``,
                      safetensors or ``.pth`` by TARGET's suffix) or ``direct`` (the safetensors bytes written
                      straight into TARGET in 64 KiB pieces, the unsafe way, as a control).
``reap N``            wait for child N and answer ``signal S`` (killed by signal S) or ``exit C`` (it exited).
``quit``              exit.

Forking (milliseconds) instead of starting a Python per writer (seconds, for the torch import) is what lets
the test kill many writers in a few seconds. The fork server runs no torch computation after setting one
thread, so the forked writers never inherit a busy thread pool.
"""

from __future__ import annotations

import os
import random
import sys
import time
import traceback

import torch

import encdec


def build_versions(count: int) -> list:
    versions = []
    for v in range(count):
        model = encdec.custom_cnn(num_classes=4)
        g = torch.Generator().manual_seed(v)
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.copy_(torch.rand(t.shape, generator=g))
        versions.append(model)
    return versions


def serialized(versions: list) -> list:
    """The safetensors bytes of each version, made once in the server so direct writers start writing at once."""
    from safetensors.torch import save

    return [save({k: t.contiguous() for k, t in m.state_dict().items()}, metadata={"version": str(i)})
            for i, m in enumerate(versions)]


def writer(mode: str, target: str, versions: list, blobs: list) -> None:
    rng = random.Random(os.getpid())
    v = rng.randrange(len(versions))
    deadline = time.monotonic() + 60  # never outlive a test that died without killing us
    while time.monotonic() < deadline:
        if mode == "atomic":
            encdec.save_weights(versions[v], target, version=str(v))
        elif mode == "pretrained":  # TARGET is the folder's model.safetensors
            encdec.save_pretrained(versions[v], os.path.dirname(target), version=str(v))
        else:
            with open(target, "wb") as f:
                for i in range(0, len(blobs[v]), 1 << 16):
                    f.write(blobs[v][i:i + (1 << 16)])
        v = (v + 1) % len(versions)


def main() -> None:
    torch.set_num_threads(1)
    versions = build_versions(int(sys.argv[1]))
    blobs = serialized(versions)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "quit":
            break
        if command[0] == "fork":
            mode, target = command[1], command[2]
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    sys.stdin.close()
                    writer(mode, target, versions, blobs)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                os._exit(code)
            print(f"pid {pid}", flush=True)
        elif command[0] == "reap":
            _, status = os.waitpid(int(command[1]), 0)
            if os.WIFSIGNALED(status):
                print(f"signal {os.WTERMSIG(status)}", flush=True)
            else:
                print(f"exit {os.WEXITSTATUS(status)}", flush=True)
        else:
            print(f"error unknown command {command[0]!r}", flush=True)


if __name__ == "__main__":
    main()

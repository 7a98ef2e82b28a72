"""tfcompile in a process of its own: `python -m export.formats.xla_aot.compile JOBS.json`.

JOBS.json lists {"graph", "config", "prefix", "cpp_class", "cpu"}; each job writes
<prefix>.h (the generated class, its thunk code included) and <prefix>.o. A process
of its own so XLA's memory is returned when it ends, and so XLA_FLAGS, which XLA
reads once per process, hold for these compilations only.
"""

from __future__ import annotations

import json
import os
import re
import sys

# Multi-threaded Eigen: matrix products run on the thread pool the caller installs
# (xla_aot_set_threads); without one they run on the calling thread. YNNPACK
# fusions are off: the AOT runtime library has no YNNPACK.
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=true --xla_cpu_experimental_ynn_fusion_type="
TARGET_TRIPLE = "x86_64-pc-linux"


def main(jobs_file: str) -> int:
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_FLAGS}".strip()
    from tensorflow.python import _pywrap_tfcompile

    for job in json.loads(open(jobs_file).read()):
        prefix = job["prefix"]
        _pywrap_tfcompile.Compile(
            graph=job["graph"],
            config=job["config"],
            target_triple=TARGET_TRIPLE,
            target_cpu=job["cpu"],
            entry_point=re.sub(r"\W", "_", f"__xla_{job['cpp_class']}"),
            cpp_class=job["cpp_class"],
            out_function_object=f"{prefix}.o",
            out_header=f"{prefix}.h",
            out_metadata_object=f"{prefix}_metadata.o",
            out_constant_buffers_object=f"{prefix}_constants.o",
            gen_name_to_index=True,
            gen_program_shape=False,
        )
        # Declared by the header but never referenced (the compilation result is
        # set to nullptr): not shipped.
        os.remove(f"{prefix}_metadata.o")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

# Sourced by image/vllm/refresh-lock and image/build: the one definition of the wheel
# target (Debian trixie: CPython 3.13, glibc 2.41, x86-64). Both must use exactly this
# list, or pip may pick a different wheel file of the same version (other hash).
pip_target=(--python-version 3.13 --implementation cp --abi cp313 --only-binary=:all:)
for _p in manylinux_2_41 manylinux_2_39 manylinux_2_38 manylinux_2_36 manylinux_2_35 manylinux_2_34 \
  manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  pip_target+=(--platform "${_p}_x86_64")
done
pip_target+=(--platform any)
unset _p

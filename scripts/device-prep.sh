#!/usr/bin/env bash
# Prepares scripts/gpu-check.sh for a lent device machine (the workplace's `device`
# tool: one NVIDIA GPU, no Rust toolchain, no network, and at most 64 MiB of working
# tree and carried paths travel with a command). Builds the two binaries here, strips
# them into .device/bin (with their line tables they are ~130 MB, stripped ~20 MB), and
# downloads the Vulkan/EGL loader packages into .gl/ as the device README says. Then
# prints the command and the carry list for one `run`.
#
#   scripts/device-prep.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bin lstm-bench --bin lstm-wgpu
mkdir -p .device/bin
for bin in lstm-bench lstm-wgpu; do
    strip -o ".device/bin/$bin" "target/release/$bin"
done

if ! ls .gl/*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${o[@]}" update -q
    (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

tree_mib=$(git ls-files -z | du -c --files0-from=- -m | tail -1 | cut -f1)
echo "travels: tracked files ${tree_mib} MiB, .device $(du -sm .device | cut -f1) MiB, .gl $(du -sm .gl | cut -f1) MiB (limit 64)"
cat <<'EOF'
device run: carry [".device", ".gl"], timeout_s 480, command:
  for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; scripts/gpu-check.sh .device/bin 2>&1 | tee $OUT/gpu-check.txt
EOF

#!/bin/sh
# Maps a Docker platform to the Rust target and the C cross toolchain that
# builds for it, for the build stage of deploy/docker/Dockerfile.
#
#   rust-target.sh TARGETPLATFORM [BUILD_DEB_ARCH]
#
# Prints shell `export` lines for: RUST_TARGET, HEARTH_CROSS_PACKAGES (Debian
# packages to install; empty when building natively), the linker and the C
# compiler cargo and the cc crate (ring, bundled SQLite) use for that target.
# BUILD_DEB_ARCH defaults to `dpkg --print-architecture` (the build machine).
set -eu

platform="${1:?usage: rust-target.sh TARGETPLATFORM [BUILD_DEB_ARCH]}"
build_arch="${2:-$(dpkg --print-architecture)}"

case "$platform" in
    linux/amd64)
        rust_target=x86_64-unknown-linux-gnu
        deb_arch=amd64
        gnu=x86_64-linux-gnu
        packages="gcc-x86-64-linux-gnu libc6-dev-amd64-cross"
        ;;
    linux/arm64 | linux/arm64/v8)
        rust_target=aarch64-unknown-linux-gnu
        deb_arch=arm64
        gnu=aarch64-linux-gnu
        packages="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
        ;;
    linux/arm/v7)
        rust_target=armv7-unknown-linux-gnueabihf
        deb_arch=armhf
        gnu=arm-linux-gnueabihf
        packages="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"
        ;;
    *)
        echo "rust-target.sh: unsupported platform '$platform' (use linux/amd64, linux/arm64 or linux/arm/v7)" >&2
        exit 1
        ;;
esac

if [ "$deb_arch" = "$build_arch" ]; then
    # Native build: the build image's own gcc links.
    packages=""
    cc="gcc"
    ar="ar"
else
    cc="$gnu-gcc"
    ar="$gnu-ar"
fi

# Cargo's per-target variables use the target upper-cased with '_' for '-';
# the cc crate's use it lower-case with '_'.
upper=$(echo "$rust_target" | tr 'a-z-' 'A-Z_')
lower=$(echo "$rust_target" | tr '-' '_')

echo "export RUST_TARGET=$rust_target"
echo "export HEARTH_CROSS_PACKAGES=\"$packages\""
echo "export CARGO_TARGET_${upper}_LINKER=$cc"
echo "export CC_${lower}=$cc"
echo "export AR_${lower}=$ar"

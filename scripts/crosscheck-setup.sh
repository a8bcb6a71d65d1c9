#!/usr/bin/env bash
# Fetch what `pcpfuzz crosscheck` needs: QEMU, a static busybox and Debian's 5.10, 6.1 and 6.12
# kernels.
#
#   * QEMU and busybox come from the machine's own apt sources (apt-get install).
#   * The 6.1 image is the one Debian's `linux-image-amd64` depends on in the machine's sources.
#   * The 5.10 and 6.12 images are the ones `linux-image-amd64` depends on in bullseye and trixie
#     (each suite with its -security suite), fetched through a PRIVATE apt configuration (its own
#     sources list, lists and cache under the cache folder, removed afterwards), on the same mirrors
#     the machine already uses; the system's sources are left untouched.
#
# Only each package's ./boot is unpacked; the images land in
# ${PCPFUZZ_CACHE:-$HOME/.cache/pcpfuzz}/crosscheck/<5.10|6.1|6.12>/{vmlinuz,config,package}.
# Idempotent: what is already there is not fetched again. Needs root (or sudo) for apt-get install.
set -euo pipefail

CACHE="${PCPFUZZ_CACHE:-$HOME/.cache/pcpfuzz}/crosscheck"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
# Downloads land in the (user's) cache folder, which apt's _apt sandbox user cannot write to.
SANDBOX=(-o APT::Sandbox::User=root)
[ "$(id -u)" -eq 0 ] || SANDBOX=()

log() { printf 'crosscheck-setup: %s\n' "$*" >&2; }

updated=0
system_apt_update() {
    if [ "$updated" -eq 0 ]; then
        "${SUDO[@]}" apt-get update -qq
        updated=1
    fi
}

install_tools() {
    if command -v qemu-system-x86_64 >/dev/null && dpkg -s busybox-static >/dev/null 2>&1; then
        log "qemu-system-x86 and busybox-static already installed"
        return
    fi
    system_apt_update
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends qemu-system-x86 busybox-static >/dev/null
}

# unpack_boot DEB DEST: keep only ./boot of the package, as DEST/{vmlinuz,config,package}.
unpack_boot() {
    local deb=$1 dest=$2 tmp
    tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
    dpkg --fsys-tarfile "$deb" | tar -x -C "$tmp" ./boot
    mkdir -p "$dest"
    cp "$tmp"/boot/vmlinuz-* "$dest/vmlinuz.new"
    cp "$tmp"/boot/config-* "$dest/config"
    dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >"$dest/package"
    mv "$dest/vmlinuz.new" "$dest/vmlinuz"
    rm -rf "$tmp"
}

# image_package APT_ARGS...: the linux-image-X package that linux-image-amd64 depends on.
image_package() {
    apt-cache "$@" depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ && !n++ { print $2 }'
}

fetch_61() {
    local dest=$CACHE/6.1 pkg
    if [ -s "$dest/vmlinuz" ]; then
        log "6.1 image already in $dest ($(cat "$dest/package"))"
        return
    fi
    system_apt_update
    pkg=$(image_package)
    case $pkg in
        linux-image-6.1.*) ;;
        *) log "the machine's sources offer '$pkg', not a 6.1 kernel"; exit 1 ;;
    esac
    (cd "$CACHE/downloads" && apt-get "${SANDBOX[@]}" download -qq "$pkg")
    unpack_boot "$CACHE/downloads/${pkg}_"*.deb "$dest"
    log "6.1 image: $(cat "$dest/package")"
}

# The mirror URI the machine uses for SUITE (e.g. bookworm, bookworm-security).
system_site() {
    apt-get indextargets --no-release-info --format '$(SITE) $(RELEASE)' \
        | awk -v s="$1" '$2 == s && !n++ { print $1 }'
}

# fetch_private VERSION SUITE: the image that `linux-image-amd64` depends on in Debian SUITE (and
# SUITE-security), through a private apt configuration on the machine's own mirrors.
fetch_private() {
    local version=$1 suite=$2 dest=$CACHE/$1 apt=$CACHE/apt-$2 codename main security pkg
    if [ -s "$dest/vmlinuz" ]; then
        log "$version image already in $dest ($(cat "$dest/package"))"
        return
    fi
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    main=$(system_site "$codename")
    security=$(system_site "$codename-security")
    if [ -z "$main" ] || [ -z "$security" ]; then
        log "cannot tell the machine's Debian mirrors for $codename and $codename-security"
        exit 1
    fi
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/sources.list.d"
    {
        echo "deb [signed-by=$KEYRING] $main $suite main"
        echo "deb [signed-by=$KEYRING] $security $suite-security main"
    } >"$apt/sources.list"
    local opts=(
        -o "Dir::Etc::sourcelist=$apt/sources.list"
        -o "Dir::Etc::sourceparts=$apt/sources.list.d"
        -o "Dir::State::lists=$apt/lists"
        -o "Dir::Cache=$apt"
        -o "Dir::Cache::archives=$apt/archives"
        -o "Dir::Cache::pkgcache=$apt/pkgcache.bin"
        -o "Dir::Cache::srcpkgcache=$apt/srcpkgcache.bin"
    )
    apt-get "${SANDBOX[@]}" "${opts[@]}" update -qq
    pkg=$(image_package "${opts[@]}")
    case $pkg in
        "linux-image-$version".*) ;;
        *) log "the private $suite sources offer '$pkg', not a $version kernel"; exit 1 ;;
    esac
    (cd "$CACHE/downloads" && apt-get "${SANDBOX[@]}" "${opts[@]}" download -qq "$pkg")
    unpack_boot "$CACHE/downloads/${pkg}_"*.deb "$dest"
    rm -rf "$apt"
    log "$version image: $(cat "$dest/package")"
}

mkdir -p "$CACHE/downloads"
install_tools
fetch_61
fetch_private 5.10 bullseye
fetch_private 6.12 trixie
rm -f "$CACHE"/downloads/*.deb
log "ready in $CACHE"

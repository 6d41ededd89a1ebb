# Network namespaces for the tests (shared TESTING.md), sourced by
# scripts/test-peer, scripts/test-browser and scripts/test-ice. Works as
# root and as a user with sudo: only what needs root goes through
# $sudo_, and test processes run as the caller, so every file they
# write (target/peer, target/browser, ...) stays the caller's.
#
# A test file names the namespace it needs in a header comment line,
# exactly `// namespace: KIND` (Python: `# namespace: KIND`); `lo`
# when it has none. Kinds:
#
#   lo    only loopback.
#   veth  lo and a veth pair v0 198.18.0.1/24, v1 198.18.0.2/24, both
#         ends inside, default route via v1 on v0: Chromium then has
#         a default-route address to hide behind a `.local` name,
#         Firefox and libnice something to gather.
#   dual  veth, plus 2001:2::1/64 on v0 and 2001:2::2/64 on v1 (no
#         duplicate address detection, so they are usable at once), an
#         IPv6 default route on v0, and ::1 on lo.

sudo_=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "$0 needs root for network namespaces: run it as root or install sudo (apt-get install sudo)" >&2
    exit 1
  fi
  sudo_="sudo"
fi

# Tests run iptables and ip from /usr/sbin, which a user's PATH lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac

namespaces_made=()

# namespace_kind FILE: the kind FILE's header asks for (lo when none);
# fails on a kind that does not exist.
namespace_kind() {
  local line kind
  line=$(grep -m 1 -E '^(//|#) namespace: ' "$1" || true)
  kind=${line#*namespace: }
  case "$kind" in
    "") echo lo ;;
    lo | veth | dual) echo "$kind" ;;
    *)
      echo "$1: unknown namespace kind \"$kind\" (lo, veth or dual)" >&2
      return 1
      ;;
  esac
}

# new_namespace NAME KIND: makes the namespace; delete_namespaces (the
# callers' EXIT trap) removes every one made.
new_namespace() {
  local ns="$1" kind="$2"
  case "$kind" in lo | veth | dual) ;; *)
    echo "new_namespace: unknown kind $kind" >&2
    return 1
    ;;
  esac
  $sudo_ ip netns add "$ns"
  namespaces_made+=("$ns")
  $sudo_ ip -n "$ns" link set lo up
  [ "$kind" != lo ] || return 0
  # No duplicate address detection on the links to come: their fe80::
  # addresses would turn from tentative to valid a second or two after
  # the browser starts, and Chromium fails requests in flight then with
  # net::ERR_NETWORK_CHANGED (seen in CI as a page whose modules never
  # loaded).
  $sudo_ ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
  $sudo_ ip -n "$ns" link add v0 type veth peer name v1
  $sudo_ ip -n "$ns" addr add 198.18.0.1/24 dev v0
  $sudo_ ip -n "$ns" addr add 198.18.0.2/24 dev v1
  if [ "$kind" = dual ]; then
    $sudo_ ip -n "$ns" addr add 2001:2::1/64 dev v0 nodad
    $sudo_ ip -n "$ns" addr add 2001:2::2/64 dev v1 nodad
  fi
  $sudo_ ip -n "$ns" link set v0 up
  $sudo_ ip -n "$ns" link set v1 up
  $sudo_ ip -n "$ns" route add default via 198.18.0.2 dev v0
  if [ "$kind" = dual ]; then
    # Linux refuses an IPv6 gateway that is a local address; a device
    # route does the same job inside the namespace.
    $sudo_ ip -n "$ns" -6 route add default dev v0
    # lo gets ::1 when it comes up unless IPv6 is off in new namespaces.
    if ! $sudo_ ip -n "$ns" -6 addr show dev lo | grep -q 'inet6 ::1/128'; then
      $sudo_ ip netns exec "$ns" sysctl -qw net.ipv6.conf.lo.disable_ipv6=0
      $sudo_ ip -n "$ns" -6 addr add ::1/128 dev lo 2>/dev/null || true
      $sudo_ ip -n "$ns" -6 addr show dev lo | grep -q 'inet6 ::1/128' ||
        { echo "namespace $ns: no ::1 on lo (is IPv6 disabled on this kernel?)" >&2; return 1; }
    fi
  fi
}

delete_namespaces() {
  local ns
  for ns in "${namespaces_made[@]}"; do $sudo_ ip netns del "$ns" 2>/dev/null || true; done
}

# kept_env: VAR=value of what a test needs from the caller's
# environment, which sudo would reset: PATH (it may hold
# target/node/bin, scripts/lib/node.sh), HOME, the locale, and the
# tests' own knobs (NATTER_*, RUST_*, CHROMIUM, CI, TMPDIR).
kept_env() {
  local v
  printf '%s\0' "PATH=$PATH" "HOME=$HOME" "USER=$(id -un)" "LANG=${LANG:-C.UTF-8}"
  for v in $(compgen -e); do
    case "$v" in NATTER_* | RUST_* | CHROMIUM | CI | TMPDIR) printf '%s\0' "$v=${!v}" ;; esac
  done
}

# as_root CMD...: CMD as root, with kept_env.
as_root() {
  if [ -z "$sudo_" ]; then
    "$@"
  else
    local env_
    mapfile -d '' env_ < <(kept_env)
    sudo env "${env_[@]}" "$@"
  fi
}

# in_namespace NAME CMD...: CMD inside the namespace as the caller. As
# root that is root; with sudo it is the user again (setpriv) with
# kept_env, keeping CAP_NET_ADMIN and CAP_NET_BIND_SERVICE over that
# namespace only, so a test can add firewall rules (iptables) or move
# addresses in it as root could, while every file it writes stays the
# user's.
in_namespace() {
  local ns="$1" env_
  shift
  if [ -z "$sudo_" ]; then
    ip netns exec "$ns" "$@"
  else
    mapfile -d '' env_ < <(kept_env)
    sudo ip netns exec "$ns" setpriv --reuid="$(id -u)" --regid="$(id -g)" --init-groups \
      --inh-caps=+net_admin,+net_bind_service --ambient-caps=+net_admin,+net_bind_service \
      env "${env_[@]}" "$@"
  fi
}

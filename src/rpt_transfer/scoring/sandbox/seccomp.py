"""The seccomp filter of every run: no kernel keyrings; in the fallback also no network, no host sockets.

Kernel keyrings are not covered by any namespace: a forked run still possesses the scorer's session
keyring and could read the keys in it (Kerberos tickets, file-system keys), so every mode refuses the
keyring calls, as container runtimes' default profiles do. The fallback has no network namespace and
sees the host's file system, so it also refuses every socket but Unix ones, io_uring (which could open
sockets past the filter), `connect` (a host service's socket, by path or abstract name) and datagram
sockets (which reach a socket by address without connecting). A run keeps Unix stream socket pairs
(multiprocessing, asyncio) and may listen in its working directory.
"""

import _socket
import ctypes
import functools
import os
import struct

from .kernel import _ARCH, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, _check, _libc, _prctl

_CALLS = {  # add_key, request_key, keyctl, connect, socketpair
    "x86_64": (248, 249, 250, 42, 53),
    "aarch64": (217, 218, 219, 203, 199),
}
_ALLOW, _DENY = 0x7FFF0000, 0x00050000 | 13  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EACCES
_LOAD, _AND, _JEQ, _JGE, _RET = 0x20, 0x54, 0x15, 0x35, 0x06
_SOCKET_TYPE_MASK = 0xF  # the type without SOCK_NONBLOCK and SOCK_CLOEXEC

Op = tuple[int, int | str, int | str, int]
"""A BPF instruction (code, jump if true, jump if false, k); a jump may name a label, resolved later."""


def _filter(deny_network: bool) -> list[tuple[int, int, int, int]]:
    """The BPF program: right architecture, no foreign ABI, no keyrings; (the fallback's socket rules)."""
    machine = os.uname().machine
    arch, nr_socket, nr_io_uring, *_ = _ARCH[machine]
    add_key, request_key, keyctl, nr_connect, nr_socketpair = _CALLS[machine]
    denied = [add_key, request_key, keyctl, *((nr_io_uring, nr_connect) if deny_network else ())]
    program: list[Op | str] = [(_LOAD, 0, 0, 4), (_JEQ, 0, "deny", arch), (_LOAD, 0, 0, 0)]
    program.append((_JGE, "deny", 0, 0x40000000))  # the x32 ABI
    program += [(_JEQ, "deny", 0, number) for number in denied]
    if deny_network:
        program += [
            (_JEQ, "socket", 0, nr_socket),
            (_JEQ, "type", 0, nr_socketpair),
            (_RET, 0, 0, _ALLOW),
            "socket",
            (_LOAD, 0, 0, 16),  # args[0]: the domain
            (_JEQ, "type", "deny", _socket.AF_UNIX),
            "type",
            (_LOAD, 0, 0, 24),  # args[1]: the type
            (_AND, 0, 0, _SOCKET_TYPE_MASK),
            (_JEQ, "deny", 0, _socket.SOCK_DGRAM),
        ]
    program += [(_RET, 0, 0, _ALLOW), "deny", (_RET, 0, 0, _DENY)]
    return _resolve(program)


def _resolve(program: list[Op | str]) -> list[tuple[int, int, int, int]]:
    """Replace label names by relative jumps (BPF jumps count the instructions skipped)."""
    labels: dict[str, int] = {}
    for item in program:
        if isinstance(item, str):
            labels[item] = sum(not isinstance(other, str) for other in program[: program.index(item)])
    ops = [item for item in program if not isinstance(item, str)]

    def offset(target: int | str, at: int) -> int:
        return target if isinstance(target, int) else labels[target] - at - 1

    return [(code, offset(jt, at), offset(jf, at), k) for at, (code, jt, jf, k) in enumerate(ops)]


@functools.cache
def compiled_filter(deny_network: bool) -> tuple[ctypes.Array, bytes]:
    """The filter and its sock_fprog, built once in the launcher, so each forked run only installs it.

    The buffer is returned (and cached) with the fprog so the memory the fprog points to stays alive.
    """
    program = _filter(deny_network)
    buffer = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
    return buffer, struct.pack("HxxxxxxQ", len(program), ctypes.addressof(buffer))


def _install_seccomp(deny_network: bool) -> None:
    """Install the filter on this process (inherited by everything it starts); sets no_new_privs."""
    _, fprog = compiled_filter(deny_network)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _check(_libc.prctl(PR_SET_SECCOMP, 2, ctypes.c_char_p(fprog), 0, 0), "seccomp")

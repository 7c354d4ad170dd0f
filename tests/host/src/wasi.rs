//! The WASI functions Envoy links, with the behaviour of the `wasi_unstable_*` functions in
//! proxy-wasm-cpp-host `src/exports.cc`: stdout and stderr go to the log, clocks and
//! randomness work, and everything touching files or sockets fails.
//!
//! Parameter lists follow cpp-host, not the WASI specification: cpp-host declares
//! `path_link` with 6 and `path_symlink` with 4 parameters (WASI has 7 and 5), so a module
//! importing the standard signatures fails to link in Envoy, and here.


use wasmtime::{Caller, Linker};

use crate::abi::{WASI_MODULES, errno};
use crate::hostcalls::guard;
use crate::memory::{read, write, write_u32, write_u64};
use crate::options::LogLevel;
use crate::state::HostState;

/// Most bytes one `random_get` may request (cpp-host
/// `PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES`).
const RANDOM_GET_MAX_BYTES: u32 = 64 * 1024;

const STDOUT: i32 = 1;
const STDERR: i32 = 2;

fn is_stdio(fd: i32) -> bool {
    fd == STDOUT || fd == STDERR
}

/// Defines a WASI function under both module names; the closure gets the caller as
/// `&mut Caller` and is guarded against restricted phases.
macro_rules! define {
    ($linker:ident, $name:literal, |$caller:ident $(, $arg:ident : $ty:ty)*| $body:block) => {
        for module in WASI_MODULES {
            $linker.func_wrap(
                module,
                $name,
                |mut caller: Caller<'_, HostState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                    let started = caller.data().host_calls.enabled.then(std::time::Instant::now);
                    #[allow(clippy::redundant_closure_call, reason = "the body may `return` early")]
                    let result = (|| -> wasmtime::Result<i32> {
                        let $caller = &mut caller;
                        guard($caller, $name)?;
                        $body
                    })();
                    if let Some(started) = started {
                        caller.data_mut().host_calls.within_calls += started.elapsed();
                    }
                    result
                },
            )?;
        }
    };
}

/// Gathers an iovec array and logs it like cpp-host `writevImpl`: stdout at info, stderr
/// at error, one trailing newline removed. Returns the errno and the bytes written.
fn write_vectors(
    caller: &mut Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
) -> (i32, u32) {
    let level = match fd {
        STDOUT => LogLevel::Info,
        STDERR => LogLevel::Error,
        _ => return (errno::BADF, 0),
    };
    let mut text = Vec::new();
    for i in 0..iovs_len as u32 {
        let Some(entry_ptr) = (iovs as u32).checked_add(i.saturating_mul(8)) else {
            return (errno::FAULT, 0);
        };
        let Some(entry) = read(caller, entry_ptr as i32, 8) else {
            return (errno::FAULT, 0);
        };
        let buf = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let buf_len = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        if buf_len == 0 {
            continue;
        }
        let Some(bytes) = read(caller, buf as i32, buf_len as i32) else {
            return (errno::FAULT, 0);
        };
        text.extend_from_slice(&bytes);
    }
    let written = u32::try_from(text.len()).unwrap_or(u32::MAX);
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if !text.is_empty() {
        caller
            .data()
            .log(level, String::from_utf8_lossy(&text).into_owned());
    }
    (errno::SUCCESS, written)
}

/// Adds the WASI functions to `linker` under `wasi_snapshot_preview1` and `wasi_unstable`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_io(linker)?;
    add_environment(linker)?;
    add_files(linker)?;
    add_sockets(linker)?;
    Ok(())
}

fn add_io(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "fd_write",
        |c, fd: i32, iovs: i32, iovs_len: i32, written_ptr: i32| {
            let (code, written) = write_vectors(c, fd, iovs, iovs_len);
            if code != errno::SUCCESS {
                return Ok(code);
            }
            Ok(if write_u32(c, written_ptr, written) {
                errno::SUCCESS
            } else {
                errno::FAULT
            })
        }
    );
    define!(
        linker,
        "fd_pwrite",
        |c, fd: i32, iovs: i32, iovs_len: i32, _offset: i64, written_ptr: i32| {
            if !is_stdio(fd) {
                return Ok(errno::BADF);
            }
            let (code, written) = write_vectors(c, fd, iovs, iovs_len);
            if code != errno::SUCCESS {
                return Ok(code);
            }
            Ok(if write_u32(c, written_ptr, written) {
                errno::SUCCESS
            } else {
                errno::FAULT
            })
        }
    );
    define!(
        linker,
        "fd_read",
        |_c, _fd: i32, _iovs: i32, _iovs_len: i32, _read_ptr: i32| { Ok(errno::NOSYS) }
    );
    define!(
        linker,
        "fd_pread",
        |_c, _fd: i32, _iovs: i32, _iovs_len: i32, _offset: i64, _read_ptr: i32| {
            Ok(errno::NOSYS)
        }
    );
    define!(
        linker,
        "fd_seek",
        |c, _fd: i32, _offset: i64, _whence: i32, _new_offset_ptr: i32| {
            c.data()
                .log(LogLevel::Trace, "wasi_unstable fd_seek".to_string());
            Ok(errno::SUCCESS)
        }
    );
    define!(linker, "fd_close", |c, _fd: i32| {
        c.data()
            .log(LogLevel::Trace, "wasi_unstable fd_close".to_string());
        Ok(errno::SUCCESS)
    });

    define!(linker, "fd_fdstat_get", |c, fd: i32, stat_ptr: i32| {
        if !is_stdio(fd) {
            return Ok(errno::BADF);
        }
        // A 24-byte fdstat with only fs_rights_base = FD_WRITE (64) set; cpp-host ignores
        // a failed write here.
        let mut stat = [0u8; 24];
        stat[8] = 64;
        write(c, stat_ptr as u32, &stat);
        Ok(errno::SUCCESS)
    });

    define!(
        linker,
        "fd_fdstat_set_flags",
        |_c, _fd: i32, _flags: i32| { Ok(errno::NOSYS) }
    );
    define!(
        linker,
        "fd_fdstat_set_rights",
        |_c, fd: i32, _base: i64, _inheriting: i64| {
            Ok(if is_stdio(fd) {
                errno::SUCCESS
            } else {
                errno::BADF
            })
        }
    );
    define!(
        linker,
        "fd_advise",
        |_c, _fd: i32, _offset: i64, _len: i64, _advice: i32| { Ok(errno::SUCCESS) }
    );
    define!(
        linker,
        "fd_allocate",
        |_c, fd: i32, _offset: i64, _len: i64| {
            Ok(if is_stdio(fd) {
                errno::SUCCESS
            } else {
                errno::BADF
            })
        }
    );
    define!(linker, "fd_datasync", |_c, fd: i32| {
        Ok(if is_stdio(fd) {
            errno::SUCCESS
        } else {
            errno::BADF
        })
    });

    define!(linker, "fd_sync", |_c, fd: i32| {
        Ok(if is_stdio(fd) {
            errno::SUCCESS
        } else {
            errno::BADF
        })
    });

    define!(linker, "fd_filestat_set_size", |_c, fd: i32, _size: i64| {
        Ok(if is_stdio(fd) {
            errno::SUCCESS
        } else {
            errno::BADF
        })
    });

    define!(
        linker,
        "fd_filestat_set_times",
        |_c, fd: i32, _atim: i64, _mtim: i64, _flags: i32| {
            Ok(if is_stdio(fd) {
                errno::SUCCESS
            } else {
                errno::BADF
            })
        }
    );
    define!(linker, "fd_tell", |c, fd: i32, offset_ptr: i32| {
        if !is_stdio(fd) {
            return Ok(errno::BADF);
        }
        Ok(if write_u64(c, offset_ptr, 0) {
            errno::SUCCESS
        } else {
            errno::FAULT
        })
    });

    define!(linker, "fd_renumber", |_c, fd: i32, to: i32| {
        Ok(if is_stdio(fd) && is_stdio(to) {
            errno::NOTSUP
        } else {
            errno::BADF
        })
    });
    Ok(())
}

fn add_environment(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // Envoy passes no environment variables unless the VM config lists some; this host
    // passes none.
    define!(
        linker,
        "environ_sizes_get",
        |c, count_ptr: i32, size_ptr: i32| {
            Ok(if write_u32(c, count_ptr, 0) && write_u32(c, size_ptr, 0) {
                errno::SUCCESS
            } else {
                errno::FAULT
            })
        }
    );
    define!(
        linker,
        "environ_get",
        |_c, _array_ptr: i32, _buffer_ptr: i32| { Ok(errno::SUCCESS) }
    );
    define!(
        linker,
        "args_sizes_get",
        |c, count_ptr: i32, size_ptr: i32| {
            Ok(if write_u32(c, count_ptr, 0) && write_u32(c, size_ptr, 0) {
                errno::SUCCESS
            } else {
                errno::FAULT
            })
        }
    );
    define!(
        linker,
        "args_get",
        |_c, _argv_ptr: i32, _argv_buf_ptr: i32| { Ok(errno::SUCCESS) }
    );
    define!(
        linker,
        "clock_time_get",
        |c, clock: i32, _precision: i64, time_ptr: i32| {
            let clock_state = &c.data().shared.clock;
            let now = match clock {
                0 => clock_state.wall_nanos(),
                1 => clock_state.monotonic_nanos(),
                _ => return Ok(errno::NOTSUP),
            };
            Ok(if write_u64(c, time_ptr, now) {
                errno::SUCCESS
            } else {
                errno::FAULT
            })
        }
    );
    define!(
        linker,
        "clock_res_get",
        |c, clock: i32, resolution_ptr: i32| {
            if clock != 0 && clock != 1 {
                return Ok(errno::NOTSUP);
            }
            Ok(if write_u64(c, resolution_ptr, 1) {
                errno::SUCCESS
            } else {
                errno::FAULT
            })
        }
    );
    define!(linker, "random_get", |c, buf_ptr: i32, buf_len: i32| {
        let len = buf_len as u32;
        if len > RANDOM_GET_MAX_BYTES {
            return Ok(errno::INVAL);
        }
        if len == 0 {
            return Ok(errno::SUCCESS);
        }
        let mut bytes = vec![0u8; len as usize];
        if !c.data().shared.random.fill(&mut bytes) {
            return Ok(errno::NOSYS);
        }
        Ok(if write(c, buf_ptr as u32, &bytes) {
            errno::SUCCESS
        } else {
            errno::FAULT
        })
    });

    define!(linker, "sched_yield", |_c| { Ok(errno::SUCCESS) });
    define!(
        linker,
        "poll_oneoff",
        |c, _in_ptr: i32, _out_ptr: i32, _subscriptions: i32, events_ptr: i32| {
            Ok(if write_u32(c, events_ptr, 0) {
                errno::SUCCESS
            } else {
                errno::FAULT
            })
        }
    );
    for module in WASI_MODULES {
        linker.func_wrap(
            module,
            "proc_exit",
            |caller: Caller<'_, HostState>, _code: i32| -> wasmtime::Result<()> {
                guard(&caller, "proc_exit")?;
                // cpp-host only logs the call and returns; a Rust guest then traps on the
                // `unreachable` after the import.
                caller
                    .data()
                    .log(LogLevel::Trace, "wasi_unstable proc_exit".to_string());
                Ok(())
            },
        )?;
    }
    Ok(())
}

fn add_files(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "path_open",
        |_c,
         _fd: i32,
         _dir_flags: i32,
         _path: i32,
         _path_len: i32,
         _oflags: i32,
         _base: i64,
         _inheriting: i64,
         _fd_flags: i32,
         _fd_ptr: i32| { Ok(errno::NOENT) }
    );
    define!(linker, "fd_prestat_get", |_c, _fd: i32, _buf_ptr: i32| {
        Ok(errno::BADF)
    });

    define!(
        linker,
        "fd_prestat_dir_name",
        |_c, _fd: i32, _path_ptr: i32, _path_len: i32| { Ok(errno::NOSYS) }
    );
    define!(linker, "fd_filestat_get", |_c, _fd: i32, _buf_ptr: i32| {
        Ok(errno::BADF)
    });

    define!(
        linker,
        "path_filestat_get",
        |_c, _fd: i32, _flags: i32, _path: i32, _path_len: i32, _buf_ptr: i32| {
            Ok(errno::NOTSUP)
        }
    );
    define!(
        linker,
        "fd_readdir",
        |c, _fd: i32, _buf: i32, _buf_len: i32, _cookie: i64, read_ptr: i32| {
            Ok(if write_u32(c, read_ptr, 0) {
                errno::NOTDIR
            } else {
                errno::FAULT
            })
        }
    );
    define!(
        linker,
        "path_create_directory",
        |_c, _fd: i32, _path: i32, _path_len: i32| { Ok(errno::NOTSUP) }
    );
    define!(
        linker,
        "path_filestat_set_times",
        |_c,
         _fd: i32,
         _flags: i32,
         _path: i32,
         _path_len: i32,
         _atim: i64,
         _mtim: i64,
         _fst_flags: i32| { Ok(errno::NOTSUP) }
    );
    define!(
        linker,
        "path_link",
        |_c,
         _old_fd: i32,
         _old_flags: i32,
         _old_path: i32,
         _old_path_len: i32,
         _new_fd: i32,
         _new_path: i32| { Ok(errno::NOTSUP) }
    );
    define!(
        linker,
        "path_readlink",
        |c, _fd: i32, _path: i32, _path_len: i32, _buf: i32, _buf_len: i32, used_ptr: i32| {
            Ok(if write_u32(c, used_ptr, 0) {
                errno::NOTSUP
            } else {
                errno::FAULT
            })
        }
    );
    define!(
        linker,
        "path_remove_directory",
        |_c, _fd: i32, _path: i32, _path_len: i32| { Ok(errno::NOTSUP) }
    );
    define!(
        linker,
        "path_rename",
        |_c,
         _fd: i32,
         _old_path: i32,
         _old_path_len: i32,
         _new_fd: i32,
         _new_path: i32,
         _new_path_len: i32| { Ok(errno::NOTSUP) }
    );
    define!(
        linker,
        "path_symlink",
        |_c, _old_path: i32, _old_path_len: i32, _fd: i32, _new_path: i32| { Ok(errno::NOTSUP) }
    );
    define!(
        linker,
        "path_unlink_file",
        |_c, _fd: i32, _path: i32, _path_len: i32| { Ok(errno::NOTSUP) }
    );
    Ok(())
}

fn add_sockets(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "sock_accept",
        |c, _fd: i32, _flags: i32, fd_ptr: i32| {
            // cpp-host writes an 8-byte zero here.
            Ok(if write_u64(c, fd_ptr, 0) {
                errno::NOTSUP
            } else {
                errno::FAULT
            })
        }
    );
    define!(
        linker,
        "sock_recv",
        |c,
         _fd: i32,
         _data: i32,
         _data_len: i32,
         _flags: i32,
         size_ptr: i32,
         out_flags_ptr: i32| {
            if !write_u32(c, size_ptr, 0) || !write(c, out_flags_ptr as u32, &[0, 0]) {
                return Ok(errno::FAULT);
            }
            Ok(errno::NOTSUP)
        }
    );
    define!(
        linker,
        "sock_send",
        |c, _fd: i32, _data: i32, _data_len: i32, _flags: i32, size_ptr: i32| {
            Ok(if write_u32(c, size_ptr, 0) {
                errno::NOTSUP
            } else {
                errno::FAULT
            })
        }
    );
    define!(linker, "sock_shutdown", |_c, _fd: i32, _how: i32| {
        Ok(errno::NOTSUP)
    });
    Ok(())
}

//! One VM: a wasmtime instance of the filter with its context state, started the way
//! proxy-wasm-cpp-host starts it (`WasmBase::initialize`, `startVm`, `ContextBase::onStart`
//! and `onConfigure` in `src/wasm.cc` and `src/context.cc`).

use std::sync::Arc;

use wasmtime::{Engine, Linker, Module, Store, Trap, TypedFunc, WasmParams, WasmResults};

use crate::abi::{ALLOWED_DURING_START, AbiVersion, provided_imports};
use crate::hostcalls;
use crate::options::{LogLevel, StartError};
use crate::state::{Action, HostState, Shared};
use crate::wasi;

type HttpCallResponseFn = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// The module's callbacks; an export with the wrong signature counts as missing, as in
/// cpp-host's wasmtime integration.
#[derive(Default)]
pub(crate) struct Callbacks {
    pub on_context_create: Option<TypedFunc<(i32, i32), ()>>,
    pub on_vm_start: Option<TypedFunc<(i32, i32), i32>>,
    pub on_configure: Option<TypedFunc<(i32, i32), i32>>,
    pub on_request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub on_request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub on_response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub on_response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub on_done: Option<TypedFunc<i32, i32>>,
    pub on_log: Option<TypedFunc<i32, ()>>,
    pub on_delete: Option<TypedFunc<i32, ()>>,
    pub on_tick: Option<TypedFunc<i32, ()>>,
    pub on_http_call_response: Option<HttpCallResponseFn>,
    pub on_queue_ready: Option<TypedFunc<(i32, i32), ()>>,
}

/// The result of one callback: its return value (`None` if the export is missing or the VM
/// trapped), whether `proxy_send_local_response` forced a stop, and the deferred actions.
pub(crate) struct Called<R> {
    pub value: Option<R>,
    pub stop: bool,
    pub actions: Vec<Action>,
}

pub(crate) struct Vm {
    pub store: Store<HostState>,
    pub callbacks: Callbacks,
    /// Why the VM failed; a failed VM is never called again (Envoy `isFailed`).
    pub failure: Option<String>,
    /// Time spent in callbacks, host calls included.
    pub guest_time: std::time::Duration,
}

/// Returns the ABI version a module declares, as cpp-host `BytecodeUtil::getAbiVersion`
/// reads it from the export names.
pub(crate) fn abi_version(module: &Module) -> Result<AbiVersion, StartError> {
    let has = |name: &str| module.exports().any(|e| e.name() == name);
    if has("proxy_abi_version_0_2_1") {
        Ok(AbiVersion::V0_2_1)
    } else if has("proxy_abi_version_0_2_0") {
        Ok(AbiVersion::V0_2_0)
    } else if has("proxy_abi_version_0_1_0") {
        Err(StartError::UnsupportedAbi {
            message: "the module declares Proxy-Wasm ABI 0.1.0, which Envoy supports but this \
                      host does not; rebuild it for ABI 0.2.1"
                .to_string(),
        })
    } else {
        Err(StartError::UnsupportedAbi {
            message: "missing or unknown Proxy-Wasm ABI version: the module exports no \
                      proxy_abi_version_0_2_1 marker"
                .to_string(),
        })
    }
}

/// Rejects imports that Envoy does not link, naming the first one.
pub(crate) fn check_imports(module: &Module, abi: AbiVersion) -> Result<(), StartError> {
    let provided = provided_imports(abi);
    for import in module.imports() {
        let is_function = matches!(import.ty(), wasmtime::ExternType::Func(_));
        let known = provided
            .iter()
            .any(|(m, n)| m == import.module() && n == import.name());
        if !is_function || !known {
            return Err(StartError::ForbiddenImport {
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        }
    }
    Ok(())
}

/// Formats a callback failure like cpp-host: "Function: NAME failed: MESSAGE".
fn failure_message(name: &str, error: &wasmtime::Error) -> String {
    // wasmtime wraps the cause in a backtrace context; the root cause is the trap or the
    // error a host function returned.
    let cause = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    format!("Function: {name} failed: {cause}")
}

impl Vm {
    /// Instantiates the module for `worker` and runs `_initialize` (or `_start`).
    pub(crate) fn instantiate(
        engine: &Engine,
        module: &Module,
        abi: AbiVersion,
        worker: usize,
        shared: Arc<Shared>,
    ) -> Result<Vm, StartError> {
        let mut linker: Linker<HostState> = Linker::new(engine);
        let link_error = |e: wasmtime::Error| StartError::Link {
            message: e.to_string(),
        };
        hostcalls::add_to_linker(&mut linker, abi).map_err(link_error)?;
        wasi::add_to_linker(&mut linker).map_err(link_error)?;

        let mut store = Store::new(engine, HostState::new(worker, shared));
        let instance =
            linker
                .instantiate(&mut store, module)
                .map_err(|e| match e.downcast_ref::<Trap>() {
                    Some(trap) => StartError::Trap {
                        worker,
                        message: trap.to_string(),
                    },
                    None => StartError::Link {
                        message: format!("{e:#}"),
                    },
                })?;

        let memory =
            instance
                .get_memory(&mut store, "memory")
                .ok_or_else(|| StartError::MissingExport {
                    name: "memory".to_string(),
                })?;
        // cpp-host prefers `malloc` and falls back to `proxy_on_memory_allocate`.
        let allocator = instance
            .get_typed_func::<i32, i32>(&mut store, "malloc")
            .or_else(|_| {
                instance.get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            })
            .map_err(|_| StartError::MissingExport {
                name: "proxy_on_memory_allocate".to_string(),
            })?;
        store.data_mut().memory = Some(memory);
        store.data_mut().allocator = Some(allocator);

        let mut get = |name: &str| instance.get_func(&mut store, name);
        let initialize = get("_initialize");
        let main = get("main");
        let main_void = get("__main_void");
        let start = get("_start");

        macro_rules! typed {
            ($name:literal) => {
                instance.get_typed_func(&mut store, $name).ok()
            };
        }
        let callbacks = Callbacks {
            on_context_create: typed!("proxy_on_context_create"),
            on_vm_start: typed!("proxy_on_vm_start"),
            on_configure: typed!("proxy_on_configure"),
            on_request_headers: typed!("proxy_on_request_headers"),
            on_request_body: typed!("proxy_on_request_body"),
            on_response_headers: typed!("proxy_on_response_headers"),
            on_response_body: typed!("proxy_on_response_body"),
            on_done: typed!("proxy_on_done"),
            on_log: typed!("proxy_on_log"),
            on_delete: typed!("proxy_on_delete"),
            on_tick: typed!("proxy_on_tick"),
            on_http_call_response: typed!("proxy_on_http_call_response"),
            on_queue_ready: typed!("proxy_on_queue_ready"),
        };
        let mut vm = Vm {
            store,
            callbacks,
            failure: None,
            guest_time: std::time::Duration::ZERO,
        };

        // WASI reactor: `_initialize`, then `main(0, 0)` or `__main_void` if exported;
        // WASI command: `_start`. Only a few host calls are allowed meanwhile.
        vm.store.data_mut().restricted = Some(ALLOWED_DURING_START);
        let result = match initialize {
            Some(initialize) => {
                let mut result = vm.run_start_function(
                    "_initialize",
                    initialize.typed::<(), ()>(&vm.store).ok(),
                    (),
                );
                if result.is_ok() {
                    if let Some(main) =
                        main.and_then(|f| f.typed::<(i32, i32), i32>(&vm.store).ok())
                    {
                        result = vm
                            .run_start_function("main", Some(main), (0, 0))
                            .map(|_| ());
                    } else if let Some(main_void) =
                        main_void.and_then(|f| f.typed::<(), i32>(&vm.store).ok())
                    {
                        result = vm
                            .run_start_function("__main_void", Some(main_void), ())
                            .map(|_| ());
                    }
                }
                result
            }
            None => vm.run_start_function(
                "_start",
                start.and_then(|f| f.typed::<(), ()>(&vm.store).ok()),
                (),
            ),
        };
        vm.store.data_mut().restricted = None;
        result.map_err(|message| StartError::Trap { worker, message })?;
        Ok(vm)
    }

    fn run_start_function<P: WasmParams, R: WasmResults + Default>(
        &mut self,
        name: &str,
        func: Option<TypedFunc<P, R>>,
        params: P,
    ) -> Result<R, String> {
        let Some(func) = func else {
            return Ok(R::default());
        };
        func.call(&mut self.store, params)
            .map_err(|e| failure_message(name, &e))
    }

    /// Creates the root context and runs `proxy_on_context_create`, `proxy_on_vm_start`
    /// and `proxy_on_configure`.
    pub(crate) fn start_root(&mut self) -> Result<(), StartError> {
        let worker = self.store.data().worker;
        let root = self.store.data().root_context_id;
        let vm_config_len = len_arg(self.store.data().shared.options.vm_config.len());
        let plugin_config_len = len_arg(self.store.data().shared.options.plugin_config.len());

        let create = self.callbacks.on_context_create.clone();
        self.call("proxy_on_context_create", root, create, (root as i32, 0));
        let vm_start = self.callbacks.on_vm_start.clone();
        let started = self.call(
            "proxy_on_vm_start",
            root,
            vm_start,
            (root as i32, vm_config_len),
        );
        self.check_start(worker)?;
        if started.value == Some(0) {
            return Err(StartError::ConfigRejected {
                worker,
                callback: "proxy_on_vm_start".to_string(),
                logs: self.logs_so_far(),
            });
        }

        self.store.data_mut().in_configure = true;
        let configure = self.callbacks.on_configure.clone();
        let configured = self.call(
            "proxy_on_configure",
            root,
            configure,
            (root as i32, plugin_config_len),
        );
        self.store.data_mut().in_configure = false;
        self.check_start(worker)?;
        if configured.value == Some(0) {
            return Err(StartError::ConfigRejected {
                worker,
                callback: "proxy_on_configure".to_string(),
                logs: self.logs_so_far(),
            });
        }
        Ok(())
    }

    fn logs_so_far(&self) -> Vec<crate::LogRecord> {
        crate::state::lock(&self.store.data().shared.state).logs.clone()
    }

    fn check_start(&self, worker: usize) -> Result<(), StartError> {
        match &self.failure {
            Some(message) => Err(StartError::Trap {
                worker,
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Calls a callback for `context` unless the VM has failed. A trap marks the VM failed
    /// and is logged at error level.
    pub(crate) fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &str,
        context: u32,
        func: Option<TypedFunc<P, R>>,
        params: P,
    ) -> Called<R> {
        let mut called = Called {
            value: None,
            stop: false,
            actions: Vec::new(),
        };
        if self.failure.is_some() {
            return called;
        }
        let Some(func) = func else {
            return called;
        };
        let state = self.store.data_mut();
        state.current_context = context;
        state.effective_context = 0;
        state.stop_next_iteration = false;
        let started = std::time::Instant::now();
        let result = func.call(&mut self.store, params);
        self.guest_time += started.elapsed();
        match result {
            Ok(value) => called.value = Some(value),
            Err(error) => {
                let message = failure_message(name, &error);
                self.store.data().log(LogLevel::Error, message.clone());
                self.failure = Some(message);
            }
        }
        let state = self.store.data_mut();
        state.current_context = 0;
        state.effective_context = 0;
        called.stop = std::mem::take(&mut state.stop_next_iteration);
        called.actions = std::mem::take(&mut state.actions);
        called
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or_default()
    }
}

/// Converts a buffer length to the i32 a callback takes.
pub(crate) fn len_arg(len: usize) -> i32 {
    u32::try_from(len).unwrap_or(u32::MAX) as i32
}

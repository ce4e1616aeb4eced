//! Adapter selection, device creation with the adapter's own limits, error capture,
//! bounded waits and readback.

use super::choose::{self, AdapterChoice, Devices};
use super::timer::Timer;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one wait for the GPU may take before the run is declared stuck. Work is
/// submitted in blocks of well under a second, so this only trips on a hung device.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// What the manifest and `fokker adapters` say about an adapter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdapterSummary {
    /// Position in the stable order `--adapter index:N` counts in (src/gpu/choose.rs).
    #[serde(default)]
    pub index: usize,
    pub name: String,
    pub backend: String,
    /// Written as its Debug name ("Cpu", "DiscreteGpu", ...), as manifests always held it.
    #[serde(with = "device_type_name")]
    pub device_type: wgpu::DeviceType,
    /// PCI vendor id (0x10de NVIDIA, 0x1002 AMD), as the backend reports it.
    #[serde(default)]
    pub vendor: u32,
    /// `dddd:bb:dd.f`, where the backend reports it (Vulkan with VK_EXT_pci_bus_info).
    #[serde(default)]
    pub pci_bus_id: Option<String>,
    /// Memory the device can use, where known: a software adapter's is the host's
    /// (MemTotal); wgpu does not report a GPU's.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    pub driver: String,
    pub driver_info: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
    /// Philox's 64-bit multiply runs natively (the device has `SHADER_INT64` and
    /// `FOKKER_EMULATE_INT64` is unset) rather than from 16-bit halves; the bits are the same.
    #[serde(default)]
    pub native_int64: bool,
    /// How the adapter was chosen (in a manifest; absent from `fokker adapters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AdapterSummary {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let software = info.device_type == wgpu::DeviceType::Cpu;
        AdapterSummary {
            index: 0,
            name: info.name,
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: info.device_type,
            vendor: info.vendor,
            pci_bus_id: super::choose::canonical_pci(&info.device_pci_bus_id),
            memory_bytes: software.then(host_memory).flatten(),
            driver: info.driver,
            driver_info: info.driver_info,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            native_int64: adapter.features().contains(wgpu::Features::SHADER_INT64)
                && std::env::var_os(EMULATE_INT64).is_none(),
            reason: None,
        }
    }

    /// A CPU adapter (Mesa lavapipe / llvmpipe): device memory is host memory, and the
    /// throughput is the host's.
    pub fn is_software(&self) -> bool {
        self.device_type == wgpu::DeviceType::Cpu
    }
}

/// serde for [`wgpu::DeviceType`] as its Debug name (wgpu's own serde is a feature not
/// enabled here).
mod device_type_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use wgpu::DeviceType;

    const ALL: [DeviceType; 5] = [
        DeviceType::Other,
        DeviceType::IntegratedGpu,
        DeviceType::DiscreteGpu,
        DeviceType::VirtualGpu,
        DeviceType::Cpu,
    ];

    pub fn serialize<S: Serializer>(t: &DeviceType, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{t:?}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceType, D::Error> {
        let name = String::deserialize(d)?;
        ALL.into_iter()
            .find(|t| format!("{t:?}") == name)
            .ok_or_else(|| D::Error::custom(format!("unknown device type {name:?}")))
    }
}

pub(crate) const NO_ADAPTER_HELP: &str = "install Mesa's software drivers to run without a GPU \
(Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1`), or select the OpenGL \
backend with WGPU_BACKEND=gl; `fokker adapters` lists what is available";

fn adapters_of(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    pollster::block_on(wgpu::Instance::new(desc).enumerate_adapters(backends))
}

/// Adapters of the backends named in `WGPU_BACKEND`; without it, the primary backends
/// (Vulkan, Metal, DX12) first and OpenGL only when they offer nothing, since opening EGL
/// costs time and prints warnings on headless machines.
fn all_adapters() -> Vec<wgpu::Adapter> {
    if std::env::var_os("WGPU_BACKEND").is_some() {
        return adapters_of(wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all()));
    }
    let primary = adapters_of(wgpu::Backends::PRIMARY);
    if primary.is_empty() {
        adapters_of(wgpu::Backends::GL)
    } else {
        primary
    }
}

/// MemTotal from /proc/meminfo (Linux), in bytes: a software adapter's memory.
fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The adapters seen, in the stable order (src/gpu/choose.rs), with their summaries.
fn ordered_adapters() -> (Vec<AdapterSummary>, Vec<wgpu::Adapter>) {
    let adapters = all_adapters();
    let mut summaries: Vec<AdapterSummary> = adapters.iter().map(AdapterSummary::of).collect();
    let perm = choose::order(&mut summaries);
    let mut slots: Vec<Option<wgpu::Adapter>> = adapters.into_iter().map(Some).collect();
    let adapters = perm.iter().filter_map(|&i| slots[i].take()).collect();
    (summaries, adapters)
}

/// Every adapter the backends in `WGPU_BACKEND` (default: the primary ones) can see, in
/// the stable order `--adapter index:N` counts in.
pub fn list_adapters() -> Vec<AdapterSummary> {
    ordered_adapters().0
}

/// The process environment and the NVIDIA driver's /proc information: what `auto` and
/// `--devices all` read.
fn scheduler_inputs() -> (impl Fn(&str) -> Option<String>, Vec<choose::NvidiaGpu>) {
    (
        |name: &str| std::env::var(name).ok(),
        choose::read_nvidia_gpus(std::path::Path::new("/proc")),
    )
}

/// Opens one device on each adapter `--devices` names, in order (the adapters are
/// enumerated once; an adapter named twice gets two devices).
pub fn open_devices(devices: &Devices) -> Result<Vec<Gpu>> {
    let (env, nvidia) = scheduler_inputs();
    let (summaries, adapters) = ordered_adapters();
    choose::choose_devices(devices, &summaries, &env, &nvidia)?
        .iter()
        .map(|c| Gpu::open_on(&summaries[c.index], &adapters[c.index], &c.reason))
        .collect()
}

/// Set (to anything) to keep Philox's 64-bit multiply emulated on devices that have a native
/// one: for benchmarks of the two paths (README, "Performance").
pub const EMULATE_INT64: &str = "FOKKER_EMULATE_INT64";

/// An open device with its queue and the errors wgpu reported outside error scopes.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    errors: Arc<Mutex<Vec<String>>>,
    /// Timestamp queries around submissions, where the device has them.
    pub(crate) timer: Option<super::timer::Timer>,
    /// Whether kernels read and write particle rows as whole vectors where they can
    /// (src/gpu/rows.rs); `FOKKER_ROWS=scalar` or [`Gpu::with_scalar_rows`] turns it off.
    pub(crate) vector_rows: bool,
    /// Compiled pipelines by label, full source and specialisation (see `Kernel::new`).
    pub(crate) kernels:
        Mutex<std::collections::HashMap<super::kernel::KernelKey, Arc<super::Kernel>>>,
}

impl Gpu {
    /// The labels of the kernels compiled on this device without host specialisation
    /// (tests: every built-in kernel specialises).
    pub fn unspecialised_kernels(&self) -> Vec<String> {
        self.kernel_labels(|k| !k.specialised())
    }

    /// The labels of the kernels compiled on this device with whole-vector particle rows
    /// (src/gpu/rows.rs), each once.
    pub fn vector_row_kernels(&self) -> Vec<String> {
        let mut out = self.kernel_labels(super::Kernel::vector_rows);
        out.dedup();
        out
    }

    /// The sorted labels of the compiled kernels that `keep` picks.
    fn kernel_labels(&self, keep: impl Fn(&super::Kernel) -> bool) -> Vec<String> {
        let cache = self
            .kernels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out: Vec<String> = cache
            .iter()
            .filter(|(_, k)| keep(k))
            .map(|(key, _)| key.label().to_string())
            .collect();
        out.sort();
        out
    }

    /// How many kernels this device has compiled.
    pub fn kernel_count(&self) -> usize {
        self.kernels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// This device with Philox's multiply emulated from here on, even where the device has a
    /// native one (tests compare the two paths' bits).
    pub fn emulating_int64(mut self) -> Gpu {
        self.adapter.native_int64 = false;
        self
    }

    /// This device with particle rows read and written one float at a time from here on
    /// (tests compare the two paths' bits; src/gpu/rows.rs).
    pub fn with_scalar_rows(mut self) -> Gpu {
        self.vector_rows = false;
        self
    }

    /// Opens the adapter `choice` names (`auto`: the scheduler's GPU where one is set).
    pub fn open(choice: &AdapterChoice) -> Result<Gpu> {
        let (env, nvidia) = scheduler_inputs();
        let (summaries, adapters) = ordered_adapters();
        let c = choose::choose(choice, &summaries, &env, &nvidia)?;
        Gpu::open_on(&summaries[c.index], &adapters[c.index], &c.reason)
    }

    /// Opens a device on `adapter` (described by `summary`, chosen for `reason`); each
    /// call opens its own device, also on an adapter opened before.
    fn open_on(summary: &AdapterSummary, adapter: &wgpu::Adapter, reason: &str) -> Result<Gpu> {
        let summary = AdapterSummary {
            reason: Some(reason.to_string()),
            ..summary.clone()
        };
        // Ask for everything the adapter offers: the binding-size limit in particular
        // decides how particle state is split into chunks.
        let limits = adapter.limits();
        let timed = adapter.features().contains(Timer::FEATURES);
        let mut features = wgpu::Features::empty();
        if summary.native_int64 {
            features |= wgpu::Features::SHADER_INT64;
        }
        if timed {
            features |= Timer::FEATURES;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("fokker"),
            required_limits: limits.clone(),
            required_features: features,
            ..Default::default()
        }))
        .map_err(|e| Error::NoAdapter(format!("{}: cannot open device: {e}", summary.name)))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut v) = lost.lock() {
                v.push(format!("device lost ({reason:?}): {message}"));
            }
        });
        let timer = timed.then(|| Timer::new(&device, &queue));
        Ok(Gpu {
            timer,
            device,
            queue,
            adapter: summary,
            limits,
            errors,
            vector_rows: std::env::var("FOKKER_ROWS").map_or(true, |v| v != "scalar"),
            kernels: Mutex::new(Default::default()),
        })
    }

    /// Fails with the first error wgpu reported since the last check.
    /// Records a device error for the next [`Gpu::check`].
    pub(crate) fn report(&self, message: String) {
        if let Ok(mut v) = self.errors.lock() {
            v.push(message);
        }
    }

    pub fn check(&self) -> Result<()> {
        let mut v = self
            .errors
            .lock()
            .map_err(|_| Error::Device("error sink poisoned".into()))?;
        if v.is_empty() {
            return Ok(());
        }
        let mut all = std::mem::take(&mut *v);
        // One failure per chunk repeats the same message: say each once.
        let total = all.len();
        all.dedup();
        let mut text = all.join("; ");
        if total > all.len() {
            text.push_str(&format!(" ({total} errors in all)"));
        }
        let out_of_memory = text.to_lowercase().contains("out of memory");
        Err(Error::Device(if out_of_memory {
            format!("the GPU ran out of memory: {text}")
        } else {
            text
        }))
    }

    /// Blocks until submitted work is done, at most [`POLL_TIMEOUT`].
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(POLL_TIMEOUT),
            })
            .map_err(|e| match e {
                wgpu::PollError::Timeout => Error::Device(format!(
                    "the GPU did not finish its work within {} s",
                    POLL_TIMEOUT.as_secs()
                )),
                other => Error::Device(other.to_string()),
            })?;
        self.check()
    }

    /// Copies `size` bytes of `buffer` from `offset` to the host.
    pub fn read_bytes(&self, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Device("readback was never mapped".into()))?
            .map_err(|e| Error::Device(format!("readback failed: {e}")))?;
        let bytes = slice
            .get_mapped_range()
            .map_err(|e| Error::Device(format!("readback failed: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(bytes)
    }

    pub fn storage_buffer(
        &self,
        label: &str,
        size: u64,
        extra: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST
                | extra,
            mapped_at_creation: false,
        })
    }

    /// A storage buffer holding `data` (at least 4 bytes, as bindings may not be empty).
    pub fn storage_with(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let buffer = self.storage_buffer(label, data.len() as u64, wgpu::BufferUsages::empty());
        if !data.is_empty() {
            self.queue.write_buffer(&buffer, 0, data);
        }
        buffer
    }

    pub fn uniform_with(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: data.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, data);
        buffer
    }
}

#[cfg(test)]
mod tests {
    use super::AdapterSummary;

    #[test]
    fn device_type_is_written_and_read_as_its_debug_name() {
        let mut summary = AdapterSummary {
            index: 1,
            name: "llvmpipe".into(),
            backend: "vulkan".into(),
            device_type: wgpu::DeviceType::Cpu,
            vendor: 0x10005,
            pci_bus_id: None,
            memory_bytes: Some(1 << 30),
            reason: None,
            driver: String::new(),
            driver_info: String::new(),
            max_storage_buffer_binding_size: 1,
            max_buffer_size: 2,
            max_compute_workgroups_per_dimension: 3,
            max_compute_invocations_per_workgroup: 4,
            native_int64: false,
        };
        let json = serde_json::to_string(&summary).expect("serialise");
        assert!(json.contains(r#""device_type":"Cpu""#), "{json}");
        assert_eq!(
            serde_json::from_str::<AdapterSummary>(&json).ok(),
            Some(summary.clone())
        );
        assert!(summary.is_software());
        summary.device_type = wgpu::DeviceType::DiscreteGpu;
        let json = serde_json::to_string(&summary).expect("serialise");
        assert!(json.contains(r#""device_type":"DiscreteGpu""#), "{json}");
        assert!(!summary.is_software());
        let unknown = json.replace("DiscreteGpu", "Toaster");
        assert!(serde_json::from_str::<AdapterSummary>(&unknown).is_err());
    }
}

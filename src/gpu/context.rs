//! Adapter selection, device creation with the adapter's own limits, error capture,
//! bounded waits and readback.

use super::timer::Timer;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one wait for the GPU may take before the run is declared stuck. Work is
/// submitted in blocks of well under a second, so this only trips on a hung device.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// `--adapter auto|software|<name substring>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterChoice {
    /// Prefer a discrete GPU, then integrated, virtual, software; Vulkan before others.
    Auto,
    /// Only CPU adapters (Mesa lavapipe / llvmpipe).
    Software,
    /// The first adapter whose name contains this (case-insensitive).
    Name(String),
}

impl std::str::FromStr for AdapterChoice {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "auto" => AdapterChoice::Auto,
            "software" => AdapterChoice::Software,
            other => AdapterChoice::Name(other.to_string()),
        })
    }
}

/// What the manifest and `fokker adapters` say about an adapter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    /// Written as its Debug name ("Cpu", "DiscreteGpu", ...), as manifests always held it.
    #[serde(with = "device_type_name")]
    pub device_type: wgpu::DeviceType,
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
}

impl AdapterSummary {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let limits = adapter.limits();
        AdapterSummary {
            name: info.name,
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: info.device_type,
            driver: info.driver,
            driver_info: info.driver_info,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            native_int64: adapter.features().contains(wgpu::Features::SHADER_INT64)
                && std::env::var_os(EMULATE_INT64).is_none(),
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

const NO_ADAPTER_HELP: &str = "install Mesa's software drivers to run without a GPU \
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

/// Every adapter the backends in `WGPU_BACKEND` (default: all) can see.
pub fn list_adapters() -> Vec<AdapterSummary> {
    all_adapters().iter().map(AdapterSummary::of).collect()
}

fn preference(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, backend)
}

fn select(choice: &AdapterChoice) -> Result<wgpu::Adapter> {
    let mut adapters = all_adapters();
    if adapters.is_empty() {
        return Err(Error::NoAdapter(format!(
            "no adapter found; {NO_ADAPTER_HELP}"
        )));
    }
    let names: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
        })
        .collect();
    adapters.sort_by_key(|a| preference(&a.get_info()));
    let found = match choice {
        AdapterChoice::Auto => adapters.into_iter().next(),
        AdapterChoice::Software => adapters
            .into_iter()
            .find(|a| a.get_info().device_type == wgpu::DeviceType::Cpu),
        AdapterChoice::Name(want) => {
            let want = want.to_lowercase();
            adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&want))
        }
    };
    found.ok_or_else(|| {
        let asked = match choice {
            AdapterChoice::Auto => "any adapter".to_string(),
            AdapterChoice::Software => "a software (CPU) adapter".to_string(),
            AdapterChoice::Name(n) => format!("an adapter whose name contains {n:?}"),
        };
        Error::NoAdapter(format!(
            "asked for {asked}; available: {}; {NO_ADAPTER_HELP}",
            names.join(", ")
        ))
    })
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
    /// Compiled pipelines by label, full source and specialisation (see `Kernel::new`).
    pub(crate) kernels:
        Mutex<std::collections::HashMap<super::kernel::KernelKey, Arc<super::Kernel>>>,
}

impl Gpu {
    /// This device with Philox's multiply emulated from here on, even where the device has a
    /// native one (tests compare the two paths' bits).
    pub fn emulating_int64(mut self) -> Gpu {
        self.adapter.native_int64 = false;
        self
    }

    pub fn open(choice: &AdapterChoice) -> Result<Gpu> {
        let adapter = select(choice)?;
        let summary = AdapterSummary::of(&adapter);
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
            name: "llvmpipe".into(),
            backend: "vulkan".into(),
            device_type: wgpu::DeviceType::Cpu,
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

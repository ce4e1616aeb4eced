//! Which adapter a process opens: `--adapter` specs, the scheduler's GPU variables and the
//! stable adapter order (docs/architecture.md, "Adapters and devices").
//!
//! Everything here is a pure function of the adapters seen, the environment (passed as a
//! lookup) and the NVIDIA driver's /proc information (passed as parsed records), so it is
//! tested with fake adapter lists. Opening the device is `Gpu::open`'s and `open_devices`' job (src/gpu/context.rs).

use super::context::AdapterSummary;
use crate::error::{Error, Result};
use std::path::Path;

/// PCI vendor ids as Vulkan reports them.
pub const VENDOR_NVIDIA: u32 = 0x10de;
pub const VENDOR_AMD: u32 = 0x1002;

/// `--adapter auto|software|index:N|pci:BUS|<name substring>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterChoice {
    /// The scheduler's GPU (Slurm, CUDA or ROCm variables) when one is set, else a discrete
    /// GPU first, then integrated, virtual, software; Vulkan before others.
    Auto,
    /// Only CPU adapters (Mesa lavapipe / llvmpipe).
    Software,
    /// The N-th adapter in the stable order ([`order`]).
    Index(usize),
    /// The adapter at this PCI bus id, canonical `dddd:bb:dd.f` ([`canonical_pci`]).
    Pci(String),
    /// The first adapter whose name contains this (case-insensitive).
    Name(String),
}

impl std::str::FromStr for AdapterChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "auto" => AdapterChoice::Auto,
            "software" => AdapterChoice::Software,
            other => {
                if let Some(n) = other.strip_prefix("index:") {
                    let i = n.trim().parse().map_err(|_| {
                        format!(
                            "`{s}`: index:N takes a non-negative integer (see `fokker adapters`)"
                        )
                    })?;
                    AdapterChoice::Index(i)
                } else if let Some(bus) = other.strip_prefix("pci:") {
                    AdapterChoice::Pci(canonical_pci(bus).ok_or_else(|| {
                        format!(
                            "`{s}`: pci:BUS takes a PCI bus id such as 0000:41:00.0 or 41:00.0 \
                             (see `fokker adapters`)"
                        )
                    })?)
                } else if other.is_empty() {
                    return Err(
                        "an empty adapter spec: use auto, software, index:N, pci:BUS or a name"
                            .into(),
                    );
                } else {
                    AdapterChoice::Name(other.to_string())
                }
            }
        })
    }
}

impl std::fmt::Display for AdapterChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdapterChoice::Auto => write!(f, "auto"),
            AdapterChoice::Software => write!(f, "software"),
            AdapterChoice::Index(i) => write!(f, "index:{i}"),
            AdapterChoice::Pci(b) => write!(f, "pci:{b}"),
            AdapterChoice::Name(n) => write!(f, "{n}"),
        }
    }
}

/// `--devices all|SPEC,SPEC,...`: the adapters one run is split across.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Devices {
    /// Every GPU the job was given (the scheduler's variables), else every adapter of the
    /// best kind present (all discrete GPUs, else integrated, ..., else software), one per
    /// PCI bus id.
    All,
    /// These specs in order; the same adapter may be named twice (two devices on it).
    List(Vec<AdapterChoice>),
}

impl std::str::FromStr for Devices {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if s.trim() == "all" {
            return Ok(Devices::All);
        }
        let specs = s
            .split(',')
            .map(|p| p.trim().parse::<AdapterChoice>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("--devices {s}: {e}"))?;
        if specs.contains(&AdapterChoice::Auto) {
            return Err(format!(
                "--devices {s}: `auto` names one adapter; write `all` or a list of \
                 software, index:N, pci:BUS or name specs"
            ));
        }
        Ok(Devices::List(specs))
    }
}

/// `dddd:bb:dd.f` (lower-case hex, as wgpu's Vulkan backend writes it) from a bus id with
/// or without its domain, with a 4- or 8-digit domain (nvidia-smi writes 8), any case.
pub fn canonical_pci(text: &str) -> Option<String> {
    let text = text.trim();
    let (rest, function) = text.rsplit_once('.')?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (domain, bus, device) = match parts[..] {
        [d, b, dev] => (u32::from_str_radix(d, 16).ok()?, b, dev),
        [b, dev] => (0, b, dev),
        _ => return None,
    };
    let bus = u8::from_str_radix(bus, 16).ok()?;
    let device = u8::from_str_radix(device, 16).ok()?;
    let function = u8::from_str_radix(function, 16).ok().filter(|f| *f < 8)?;
    (device < 32).then(|| format!("{domain:04x}:{bus:02x}:{device:02x}.{function}"))
}

/// One GPU from the NVIDIA driver's `/proc/driver/nvidia/gpus/<bus>/information`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvidiaGpu {
    /// `Device Minor`: N of /dev/nvidiaN, the physical index Slurm's gres lists.
    pub minor: u32,
    /// `Bus Location`, canonical.
    pub bus_id: String,
    /// `GPU UUID`, e.g. `GPU-3b1f...`.
    pub uuid: Option<String>,
}

/// Parses one `information` file; None without a minor number or a bus location.
pub fn parse_nvidia_information(text: &str) -> Option<NvidiaGpu> {
    let field = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    Some(NvidiaGpu {
        minor: field("Device Minor")?.parse().ok()?,
        bus_id: canonical_pci(&field("Bus Location")?)?,
        uuid: field("GPU UUID").filter(|u| !u.is_empty()),
    })
}

/// Every GPU under `proc_root/driver/nvidia/gpus` (pass `/proc`); none where the driver or
/// the directory is absent.
pub fn read_nvidia_gpus(proc_root: &Path) -> Vec<NvidiaGpu> {
    let Ok(dirs) = std::fs::read_dir(proc_root.join("driver/nvidia/gpus")) else {
        return Vec::new();
    };
    let mut gpus: Vec<NvidiaGpu> = dirs
        .filter_map(|d| std::fs::read_to_string(d.ok()?.path().join("information")).ok())
        .filter_map(|t| parse_nvidia_information(&t))
        .collect();
    gpus.sort_by_key(|g| g.minor);
    gpus
}

fn backend_rank(backend: &str) -> u8 {
    match backend {
        "vulkan" => 0,
        "metal" => 1,
        "dx12" => 2,
        "gl" => 3,
        _ => 4,
    }
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// The stable order `index:N` counts in: adapters with a PCI bus id first, by bus id; then
/// by backend (Vulkan, Metal, DX12, GL), name and device type. Sets every `index`; returns
/// the permutation applied (`perm[i]` is the input position of the i-th adapter).
pub fn order(adapters: &mut Vec<AdapterSummary>) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..adapters.len()).collect();
    perm.sort_by(|&a, &b| {
        let key = |s: &AdapterSummary| {
            (
                s.pci_bus_id.is_none(),
                s.pci_bus_id.clone(),
                backend_rank(&s.backend),
                s.name.clone(),
                type_rank(s.device_type),
            )
        };
        key(&adapters[a]).cmp(&key(&adapters[b]))
    });
    let mut sorted: Vec<AdapterSummary> = perm.iter().map(|&i| adapters[i].clone()).collect();
    for (i, s) in sorted.iter_mut().enumerate() {
        s.index = i;
    }
    *adapters = sorted;
    perm
}

/// An adapter chosen: its index in the stable order and how it was chosen (the manifest's
/// `adapter.reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub index: usize,
    pub reason: String,
}

/// `0 NVIDIA H100 (0000:18:00.0, vulkan), 1 llvmpipe (-, vulkan)`.
pub fn seen(adapters: &[AdapterSummary]) -> String {
    if adapters.is_empty() {
        return "none".into();
    }
    adapters
        .iter()
        .map(|a| {
            format!(
                "{} {} ({}, {})",
                a.index,
                a.name,
                a.pci_bus_id.as_deref().unwrap_or("-"),
                a.backend
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn refuse(what: String, adapters: &[AdapterSummary]) -> Error {
    Error::NoAdapter(format!(
        "{what}; adapters seen: {}; name one with --adapter (index:N, pci:BUS, software) to \
         override, see `fokker adapters`",
        seen(adapters)
    ))
}

/// The scheduler variables read, most specific first: Slurm sets CUDA_VISIBLE_DEVICES /
/// ROCR_VISIBLE_DEVICES per task when it binds GPUs to tasks, while SLURM_STEP_GPUS lists
/// the whole step's GPUs.
pub const SCHEDULER_VARIABLES: [&str; 4] = [
    "CUDA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "SLURM_STEP_GPUS",
    "SLURM_JOB_GPUS",
];

/// The adapters the scheduler gave this process, in the variable's order, or None when no
/// variable is set. Refuses (exit 69) a variable it cannot match to adapters seen.
pub fn scheduler_gpus(
    adapters: &[AdapterSummary],
    env: &dyn Fn(&str) -> Option<String>,
    nvidia: &[NvidiaGpu],
) -> Result<Option<Vec<Chosen>>> {
    let Some((var, value)) = SCHEDULER_VARIABLES
        .iter()
        .find_map(|v| env(v).map(|value| (*v, value)))
    else {
        return Ok(None);
    };
    let entries: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let given = format!("{var}={value}");
    if entries.is_empty() || entries.iter().any(|e| *e == "-1" || *e == "NoDevFiles") {
        return Err(refuse(
            format!("{given} gives this process no GPU"),
            adapters,
        ));
    }
    let by_bus = |bus: &str, how: String| -> Result<Chosen> {
        adapters
            .iter()
            .find(|a| a.pci_bus_id.as_deref() == Some(bus))
            .map(|a| Chosen {
                index: a.index,
                reason: format!("{given}: {how}, the adapter at PCI {bus}"),
            })
            .ok_or_else(|| {
                refuse(
                    format!("{given}: {how} is the GPU at PCI {bus}, and no adapter seen is there"),
                    adapters,
                )
            })
    };
    // Adapters of one vendor in PCI order, one per bus id (a GPU seen by two backends once).
    let of_vendor = |vendor: u32| -> Vec<&AdapterSummary> {
        let mut out: Vec<&AdapterSummary> = Vec::new();
        for a in adapters.iter().filter(|a| a.vendor == vendor) {
            if a.pci_bus_id.is_none() || out.iter().all(|b| b.pci_bus_id != a.pci_bus_id) {
                out.push(a);
            }
        }
        out
    };
    let mut chosen = Vec::new();
    for entry in entries {
        let pick = match var {
            "CUDA_VISIBLE_DEVICES" | "ROCR_VISIBLE_DEVICES" => {
                let (vendor, maker) = if var == "CUDA_VISIBLE_DEVICES" {
                    (VENDOR_NVIDIA, "NVIDIA")
                } else {
                    (VENDOR_AMD, "AMD")
                };
                if let Ok(i) = entry.parse::<usize>() {
                    let candidates = of_vendor(vendor);
                    let mixed = candidates.iter().any(|a| a.name != candidates[0].name);
                    // CUDA counts fastest first unless told PCI_BUS_ID: the same as PCI
                    // order only where the GPUs are alike.
                    if var == "CUDA_VISIBLE_DEVICES"
                        && mixed
                        && env("CUDA_DEVICE_ORDER").as_deref() != Some("PCI_BUS_ID")
                    {
                        return Err(refuse(
                            format!(
                                "{given}: the NVIDIA GPUs here differ, so CUDA's default \
                                 fastest-first numbering need not be PCI order; set \
                                 CUDA_DEVICE_ORDER=PCI_BUS_ID"
                            ),
                            adapters,
                        ));
                    }
                    candidates
                        .get(i)
                        .map(|a| Chosen {
                            index: a.index,
                            reason: format!(
                                "{given}: entry {i} is the {maker} adapter {i} in PCI order"
                            ),
                        })
                        .ok_or_else(|| {
                            refuse(
                                format!(
                                    "{given}: entry {i}, but {} {maker} adapter(s) are seen",
                                    candidates.len()
                                ),
                                adapters,
                            )
                        })?
                } else if var == "CUDA_VISIBLE_DEVICES" && entry.starts_with("GPU-") {
                    // CUDA accepts any unique prefix of a UUID.
                    let hits: Vec<&NvidiaGpu> = nvidia
                        .iter()
                        .filter(|g| g.uuid.as_deref().is_some_and(|u| u.starts_with(entry)))
                        .collect();
                    match hits[..] {
                        [g] => by_bus(&g.bus_id, format!("UUID {entry}"))?,
                        [] => {
                            return Err(refuse(
                                format!(
                                    "{given}: UUID {entry} is not among the {} GPU(s) in \
                                     /proc/driver/nvidia/gpus",
                                    nvidia.len()
                                ),
                                adapters,
                            ));
                        }
                        _ => {
                            return Err(refuse(
                                format!("{given}: UUID prefix {entry} matches several GPUs"),
                                adapters,
                            ));
                        }
                    }
                } else {
                    return Err(refuse(
                        format!(
                            "{given}: entry {entry} cannot be matched to an adapter (wgpu \
                             reports no UUIDs; CUDA GPU- UUIDs are matched through \
                             /proc/driver/nvidia/gpus, MIG instances and AMD UUIDs are not)"
                        ),
                        adapters,
                    ));
                }
            }
            _ => {
                let Ok(minor) = entry.parse::<u32>() else {
                    return Err(refuse(
                        format!("{given}: entry {entry} is not a GPU index"),
                        adapters,
                    ));
                };
                match nvidia.iter().find(|g| g.minor == minor) {
                    Some(g) => by_bus(&g.bus_id, format!("GPU minor {minor}"))?,
                    None => {
                        return Err(refuse(
                            format!(
                                "{given}: physical GPU {minor} is matched through the NVIDIA \
                                 driver's /proc/driver/nvidia/gpus, which lists {}",
                                if nvidia.is_empty() {
                                    "no GPU here".to_string()
                                } else {
                                    let mut minors: Vec<u32> =
                                        nvidia.iter().map(|g| g.minor).collect();
                                    minors.sort_unstable();
                                    format!("minor numbers {minors:?}")
                                }
                            ),
                            adapters,
                        ));
                    }
                }
            }
        };
        chosen.push(pick);
    }
    Ok(Some(chosen))
}

/// The adapter `choice` names among `adapters` (in the stable order). An explicit spec
/// wins over the scheduler's variables; `auto` honours them.
pub fn choose(
    choice: &AdapterChoice,
    adapters: &[AdapterSummary],
    env: &dyn Fn(&str) -> Option<String>,
    nvidia: &[NvidiaGpu],
) -> Result<Chosen> {
    if adapters.is_empty() {
        return Err(Error::NoAdapter(format!(
            "no adapter found; {}",
            super::context::NO_ADAPTER_HELP
        )));
    }
    let found = |a: Option<&AdapterSummary>, reason: String| {
        a.map(|a| Chosen {
            index: a.index,
            reason,
        })
    };
    let pick = match choice {
        AdapterChoice::Auto => {
            if let Some(gpus) = scheduler_gpus(adapters, env, nvidia)? {
                return Ok(gpus.into_iter().next().expect("a set variable names a GPU"));
            }
            let best = adapters
                .iter()
                .min_by_key(|a| (type_rank(a.device_type), backend_rank(&a.backend) > 2));
            found(
                best,
                "--adapter auto without scheduler variables: discrete GPU first, then \
                 integrated, virtual, software; lowest index among equals"
                    .into(),
            )
        }
        AdapterChoice::Software => found(
            adapters.iter().find(|a| a.is_software()),
            "--adapter software: the first software adapter".into(),
        ),
        AdapterChoice::Index(i) => found(adapters.get(*i), format!("--adapter index:{i}")),
        AdapterChoice::Pci(bus) => found(
            adapters
                .iter()
                .find(|a| a.pci_bus_id.as_deref() == Some(bus.as_str())),
            format!("--adapter pci:{bus}"),
        ),
        AdapterChoice::Name(want) => {
            let lower = want.to_lowercase();
            found(
                adapters
                    .iter()
                    .find(|a| a.name.to_lowercase().contains(&lower)),
                format!("--adapter {want}: the first adapter whose name contains it"),
            )
        }
    };
    pick.ok_or_else(|| {
        let asked = match choice {
            AdapterChoice::Auto => "any adapter".to_string(),
            AdapterChoice::Software => "a software (CPU) adapter".to_string(),
            AdapterChoice::Index(i) => format!("adapter index {i}"),
            AdapterChoice::Pci(b) => format!("the adapter at PCI {b}"),
            AdapterChoice::Name(n) => format!("an adapter whose name contains {n:?}"),
        };
        refuse(
            format!(
                "--adapter {choice} matches nothing (asked for {asked}; {})",
                super::context::NO_ADAPTER_HELP
            ),
            adapters,
        )
    })
}

/// The adapters of `--devices`, in order.
pub fn choose_devices(
    devices: &Devices,
    adapters: &[AdapterSummary],
    env: &dyn Fn(&str) -> Option<String>,
    nvidia: &[NvidiaGpu],
) -> Result<Vec<Chosen>> {
    match devices {
        Devices::List(specs) => specs
            .iter()
            .map(|c| {
                choose(c, adapters, env, nvidia).map(|mut chosen| {
                    chosen.reason = format!("--devices: {}", chosen.reason);
                    chosen
                })
            })
            .collect(),
        Devices::All => {
            if let Some(gpus) = scheduler_gpus(adapters, env, nvidia)? {
                return Ok(gpus);
            }
            let Some(best) = adapters.iter().map(|a| type_rank(a.device_type)).min() else {
                return Err(refuse("--devices all: no adapter".into(), adapters));
            };
            let mut out: Vec<&AdapterSummary> = Vec::new();
            for a in adapters.iter().filter(|a| type_rank(a.device_type) == best) {
                let same_gpu = |b: &&AdapterSummary| {
                    a.pci_bus_id.is_some() && b.pci_bus_id == a.pci_bus_id
                        || a.pci_bus_id.is_none() && b.name == a.name
                };
                if !out.iter().any(same_gpu) {
                    out.push(a);
                }
            }
            Ok(out
                .into_iter()
                .map(|a| Chosen {
                    index: a.index,
                    reason: "--devices all without scheduler variables: every adapter of the \
                             best kind present, one per GPU"
                        .into(),
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, vendor: u32, bus: Option<&str>, t: wgpu::DeviceType) -> AdapterSummary {
        AdapterSummary {
            index: 0,
            name: name.into(),
            backend: "vulkan".into(),
            device_type: t,
            vendor,
            pci_bus_id: bus.map(String::from),
            memory_bytes: None,
            driver: String::new(),
            driver_info: String::new(),
            max_storage_buffer_binding_size: 1,
            max_buffer_size: 1,
            max_compute_workgroups_per_dimension: 1,
            max_compute_invocations_per_workgroup: 1,
            native_int64: false,
            reason: None,
        }
    }

    /// Four H100s enumerated out of PCI order, and lavapipe.
    fn node() -> Vec<AdapterSummary> {
        let gpu = |bus| {
            adapter(
                "NVIDIA H100",
                VENDOR_NVIDIA,
                Some(bus),
                wgpu::DeviceType::DiscreteGpu,
            )
        };
        let mut all = vec![
            adapter("llvmpipe", 0x10005, None, wgpu::DeviceType::Cpu),
            gpu("0000:c1:00.0"),
            gpu("0000:18:00.0"),
            gpu("0000:41:00.0"),
            gpu("0000:81:00.0"),
        ];
        order(&mut all);
        all
    }

    /// The driver numbers the GPUs (minor) not in PCI order here: minor 0 is 0000:41:00.0.
    fn proc_info() -> Vec<NvidiaGpu> {
        [
            (1, "0000:18:00.0"),
            (0, "0000:41:00.0"),
            (2, "0000:81:00.0"),
            (3, "0000:c1:00.0"),
        ]
        .into_iter()
        .map(|(minor, bus)| NvidiaGpu {
            minor,
            bus_id: bus.into(),
            uuid: Some(format!("GPU-{minor}aaa-{bus}")),
        })
        .collect()
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn bus(adapters: &[AdapterSummary], c: &Chosen) -> String {
        adapters[c.index].pci_bus_id.clone().unwrap_or_default()
    }

    fn auto(vars: &[(&str, &str)]) -> Result<String> {
        let a = node();
        choose(&AdapterChoice::Auto, &a, &env_of(vars), &proc_info()).map(|c| bus(&a, &c))
    }

    fn refusal(r: Result<String>) -> String {
        match r {
            Err(e @ Error::NoAdapter(_)) => {
                assert_eq!(e.exit_code(), crate::error::exit::NO_ADAPTER);
                e.to_string()
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn order_is_by_pci_bus_then_backend_and_name() {
        let a = node();
        let buses: Vec<_> = a
            .iter()
            .map(|a| a.pci_bus_id.as_deref().unwrap_or("-"))
            .collect();
        assert_eq!(
            buses,
            [
                "0000:18:00.0",
                "0000:41:00.0",
                "0000:81:00.0",
                "0000:c1:00.0",
                "-"
            ]
        );
        assert!(a.iter().enumerate().all(|(i, a)| a.index == i));
        let mut two = vec![
            AdapterSummary {
                backend: "gl".into(),
                ..adapter("b", 1, None, wgpu::DeviceType::Cpu)
            },
            adapter("b", 1, None, wgpu::DeviceType::Cpu),
            adapter("a", 1, None, wgpu::DeviceType::Cpu),
        ];
        assert_eq!(order(&mut two), vec![2, 1, 0]);
        assert_eq!((two[0].name.as_str(), two[2].backend.as_str()), ("a", "gl"));
    }

    #[test]
    fn the_plain_case_takes_the_first_discrete_gpu() {
        assert_eq!(auto(&[]).unwrap(), "0000:18:00.0");
        let soft = vec![adapter("llvmpipe", 0x10005, None, wgpu::DeviceType::Cpu)];
        let c = choose(&AdapterChoice::Auto, &soft, &env_of(&[]), &[]).unwrap();
        assert_eq!(c.index, 0);
        assert!(
            c.reason.contains("without scheduler variables"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn slurm_physical_indices_go_through_the_driver_minor_numbers() {
        assert_eq!(auto(&[("SLURM_STEP_GPUS", "0")]).unwrap(), "0000:41:00.0");
        assert_eq!(auto(&[("SLURM_JOB_GPUS", "3,1")]).unwrap(), "0000:c1:00.0");
        // The step's GPUs before the job's.
        let both = [("SLURM_STEP_GPUS", "2"), ("SLURM_JOB_GPUS", "0,1,2,3")];
        assert_eq!(auto(&both).unwrap(), "0000:81:00.0");
        let a = node();
        let c = choose(&AdapterChoice::Auto, &a, &env_of(&both), &proc_info()).unwrap();
        assert!(c.reason.starts_with("SLURM_STEP_GPUS=2"), "{}", c.reason);
        // Without the driver's /proc information a physical index cannot be matched.
        let e = choose(&AdapterChoice::Auto, &a, &env_of(&both), &[]).map(|c| bus(&a, &c));
        let e = refusal(e);
        assert!(
            e.contains("SLURM_STEP_GPUS=2") && e.contains("no GPU here"),
            "{e}"
        );
        assert!(e.contains("0 NVIDIA H100 (0000:18:00.0, vulkan)"), "{e}");
        let e = refusal(auto(&[("SLURM_STEP_GPUS", "7")]));
        assert!(e.contains("minor numbers [0, 1, 2, 3]"), "{e}");
    }

    #[test]
    fn cuda_indices_count_nvidia_adapters_in_pci_order_and_uuids_match_through_proc() {
        assert_eq!(
            auto(&[("CUDA_VISIBLE_DEVICES", "2,3")]).unwrap(),
            "0000:81:00.0"
        );
        // The per-task variable wins over the step's list.
        let v = [
            ("CUDA_VISIBLE_DEVICES", "1"),
            ("SLURM_STEP_GPUS", "0,1,2,3"),
        ];
        assert_eq!(auto(&v).unwrap(), "0000:41:00.0");
        assert_eq!(
            auto(&[("CUDA_VISIBLE_DEVICES", "GPU-3aaa-0000:c1:00.0")]).unwrap(),
            "0000:c1:00.0"
        );
        // A unique prefix is enough, as for CUDA; an ambiguous one is refused.
        assert_eq!(
            auto(&[("CUDA_VISIBLE_DEVICES", "GPU-2")]).unwrap(),
            "0000:81:00.0"
        );
        let e = refusal(auto(&[("CUDA_VISIBLE_DEVICES", "GPU-")]));
        assert!(e.contains("matches several"), "{e}");
        let e = refusal(auto(&[("CUDA_VISIBLE_DEVICES", "GPU-ffff")]));
        assert!(e.contains("not among the 4 GPU(s)"), "{e}");
        let e = refusal(auto(&[("CUDA_VISIBLE_DEVICES", "MIG-1234")]));
        assert!(e.contains("MIG"), "{e}");
        let e = refusal(auto(&[("CUDA_VISIBLE_DEVICES", "4")]));
        assert!(
            e.contains("CUDA_VISIBLE_DEVICES=4") && e.contains("4 NVIDIA adapter(s)"),
            "{e}"
        );
        for none in ["", "-1", "NoDevFiles"] {
            let e = refusal(auto(&[("CUDA_VISIBLE_DEVICES", none)]));
            assert!(e.contains("gives this process no GPU"), "{e}");
        }
    }

    #[test]
    fn cuda_indices_on_mixed_gpus_need_pci_bus_id_order() {
        let mut a = node();
        a[3].name = "NVIDIA A100".into();
        let env = env_of(&[("CUDA_VISIBLE_DEVICES", "1")]);
        let e = choose(&AdapterChoice::Auto, &a, &env, &[]).map(|c| bus(&a, &c));
        assert!(refusal(e).contains("CUDA_DEVICE_ORDER=PCI_BUS_ID"));
        let env = env_of(&[
            ("CUDA_VISIBLE_DEVICES", "1"),
            ("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
        ]);
        let c = choose(&AdapterChoice::Auto, &a, &env, &[]).unwrap();
        assert_eq!(bus(&a, &c), "0000:41:00.0");
    }

    #[test]
    fn rocm_indices_count_amd_adapters_and_uuids_are_refused() {
        let mut a: Vec<AdapterSummary> = ["0000:c3:00.0", "0000:03:00.0"]
            .into_iter()
            .map(|b| {
                adapter(
                    "AMD Instinct MI250X",
                    VENDOR_AMD,
                    Some(b),
                    wgpu::DeviceType::DiscreteGpu,
                )
            })
            .collect();
        a.push(adapter("llvmpipe", 0x10005, None, wgpu::DeviceType::Cpu));
        order(&mut a);
        let pick = |v: &str| {
            choose(
                &AdapterChoice::Auto,
                &a,
                &env_of(&[("ROCR_VISIBLE_DEVICES", v)]),
                &[],
            )
            .map(|c| bus(&a, &c))
        };
        assert_eq!(pick("1").unwrap(), "0000:c3:00.0");
        assert_eq!(pick("0,1").unwrap(), "0000:03:00.0");
        let e = refusal(pick("GPU-4d0e1c2b"));
        assert!(
            e.contains("ROCR_VISIBLE_DEVICES=GPU-4d0e1c2b") && e.contains("AMD UUIDs"),
            "{e}"
        );
        assert!(refusal(pick("2")).contains("2 AMD adapter(s)"));
        // NVIDIA's variable does not match AMD GPUs.
        let e = choose(
            &AdapterChoice::Auto,
            &a,
            &env_of(&[("CUDA_VISIBLE_DEVICES", "0")]),
            &[],
        )
        .map(|c| bus(&a, &c));
        assert!(refusal(e).contains("0 NVIDIA adapter(s)"));
    }

    #[test]
    fn an_explicit_adapter_wins_over_scheduler_variables() {
        let a = node();
        let env = env_of(&[("CUDA_VISIBLE_DEVICES", "-1"), ("SLURM_STEP_GPUS", "9")]);
        let pick = |spec: &str| {
            choose(&spec.parse().unwrap(), &a, &env, &proc_info()).map(|c| a[c.index].clone())
        };
        assert_eq!(
            pick("index:2").unwrap().pci_bus_id.as_deref(),
            Some("0000:81:00.0")
        );
        assert_eq!(pick("pci:C1:00.0").unwrap().index, 3);
        assert_eq!(pick("pci:00000000:41:00.0").unwrap().index, 1);
        assert_eq!(pick("software").unwrap().name, "llvmpipe");
        assert_eq!(pick("h100").unwrap().index, 0);
        assert!(pick("index:1").unwrap().pci_bus_id.is_some());
        let c = choose(&"index:1".parse().unwrap(), &a, &env, &[]).unwrap();
        assert_eq!(c.reason, "--adapter index:1");
        for missing in ["index:5", "pci:0000:42:00.0", "radeon"] {
            let e = pick(missing).map(|a| a.name);
            let e = refusal(e);
            assert!(
                e.contains(missing) && e.contains("4 llvmpipe (-, vulkan)"),
                "{e}"
            );
        }
        let soft_less = &a[..4];
        let e = choose(&AdapterChoice::Software, soft_less, &env, &[]).map(|c| c.reason);
        assert!(refusal(e).contains("software"));
    }

    #[test]
    fn specs_parse_and_bad_ones_say_what_is_allowed() {
        assert_eq!("index:3".parse(), Ok(AdapterChoice::Index(3)));
        assert_eq!(
            "pci:41:00.0".parse(),
            Ok(AdapterChoice::Pci("0000:41:00.0".into()))
        );
        assert_eq!("Tesla".parse(), Ok(AdapterChoice::Name("Tesla".into())));
        for bad in [
            "index:x",
            "index:-1",
            "pci:41",
            "pci:zz:00.0",
            "pci:41:40.0",
            "",
        ] {
            let e = bad.parse::<AdapterChoice>().unwrap_err();
            assert!(e.contains(bad) || bad.is_empty(), "{e}");
        }
        assert_eq!(
            canonical_pci("0000:C1:00.1").as_deref(),
            Some("0000:c1:00.1")
        );
        assert_eq!(canonical_pci("41:00.8"), None);
        assert_eq!("all".parse(), Ok(Devices::All));
        assert_eq!(
            "software, software".parse(),
            Ok(Devices::List(vec![
                AdapterChoice::Software,
                AdapterChoice::Software
            ]))
        );
        assert!(
            "software,auto"
                .parse::<Devices>()
                .unwrap_err()
                .contains("`auto`")
        );
        assert!(
            "index:0,index:q"
                .parse::<Devices>()
                .unwrap_err()
                .contains("index:q")
        );
    }

    #[test]
    fn devices_all_is_the_jobs_gpus_else_every_gpu_of_the_best_kind() {
        let a = node();
        let all = |vars: &[(&str, &str)]| {
            choose_devices(&Devices::All, &a, &env_of(vars), &proc_info())
                .map(|v| v.iter().map(|c| bus(&a, c)).collect::<Vec<_>>())
        };
        assert_eq!(all(&[]).unwrap().len(), 4);
        assert_eq!(
            all(&[("SLURM_JOB_GPUS", "0,3")]).unwrap(),
            ["0000:41:00.0", "0000:c1:00.0"]
        );
        assert!(all(&[("SLURM_JOB_GPUS", "0,8")]).is_err());
        let twice = Devices::List(vec![AdapterChoice::Software, AdapterChoice::Software]);
        let v = choose_devices(&twice, &a, &env_of(&[]), &[]).unwrap();
        assert_eq!((v[0].index, v[1].index), (4, 4));
        assert!(v[0].reason.starts_with("--devices: --adapter software"));
    }

    #[test]
    fn nvidia_proc_information_is_parsed_and_read_from_a_directory() {
        let text = "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 0\nGPU UUID: \t GPU-3b1f2c4d-0000\n\
                    Video BIOS: \t 96.00.99.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\n\
                    Bus Location: \t 0000:C1:00.0\nDevice Minor: \t 3\nGPU Excluded:\t No\n";
        let g = parse_nvidia_information(text).unwrap();
        assert_eq!(
            g,
            NvidiaGpu {
                minor: 3,
                bus_id: "0000:c1:00.0".into(),
                uuid: Some("GPU-3b1f2c4d-0000".into())
            }
        );
        assert_eq!(
            parse_nvidia_information("Model: x\nDevice Minor: 1\n"),
            None
        );
        let root = tempfile::tempdir().unwrap();
        for (dir, body) in [
            ("0000:c1:00.0", text.to_string()),
            (
                "0000:18:00.0",
                text.replace("C1", "18")
                    .replace("Minor: \t 3", "Minor: \t 0"),
            ),
        ] {
            let d = root.path().join("driver/nvidia/gpus").join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("information"), body).unwrap();
        }
        let gpus = read_nvidia_gpus(root.path());
        assert_eq!(
            gpus.iter()
                .map(|g| (g.minor, g.bus_id.as_str()))
                .collect::<Vec<_>>(),
            [(0, "0000:18:00.0"), (3, "0000:c1:00.0")]
        );
        assert!(read_nvidia_gpus(&root.path().join("absent")).is_empty());
    }
}

use super::*;

const FRIENDLY: &str = "EQDk2VTvn04SUKJrW7rXahzdF8_Qi6utb0wj43InCu9vdjrR";
const RAW: &str = "0:e4d954ef9f4e1250a26b5bbad76a1cdd17cfd08babad6f4c23e372270aef6f76";

fn parse(text: &str, mode: Mode) -> Result<WorkerConfig, ConfigError> {
    WorkerConfig::from_toml(
        text,
        Path::new("worker.toml"),
        Path::new("/etc/cocoon"),
        mode,
    )
}

fn problems(text: &str, mode: Mode) -> Vec<FieldProblem> {
    match parse(text, mode) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn minimal_td_config_gets_the_documented_defaults() {
    let c = parse(
        &format!("image_dir = \"img\"\nowner_address = \"{FRIENDLY}\"\n"),
        Mode::Td,
    )
    .unwrap();
    assert_eq!(c.image_dir, PathBuf::from("/etc/cocoon/img"));
    assert_eq!(c.vcpus, 8);
    assert_eq!(c.memory_mib, 16384);
    assert_eq!(c.pricing.nanoton_per_token, 20);
    assert_eq!(c.pricing.worker_share_percent, 95);
    assert_eq!(c.pricing.proxy_share_percent, 5);
    assert_eq!(c.ports.agent_port, 8443);
    assert_eq!(c.host_port(), 8443);
    assert_eq!(c.guest_cid(), 3);
    assert_eq!(
        c.quote_generation,
        QuoteGeneration::Vsock { cid: 2, port: 4050 }
    );
    assert_eq!(c.restart.max_fast_failures, 5);
    assert_eq!(c.restart.on_guest_exit, OnGuestExit::Restart);
    assert_eq!(c.qemu, PathBuf::from("/usr/bin/qemu-system-x86_64"));
    assert_eq!(
        c.state_dir(Mode::Td),
        PathBuf::from("/var/lib/cocoon-host/instance-0")
    );
    assert_eq!(
        c.serial_log(Mode::Td),
        PathBuf::from("/var/lib/cocoon-host/instance-0/serial.log")
    );
}

#[test]
fn instance_index_offsets_cid_port_and_state() {
    let c = parse(
        &format!("image_dir = \"/i\"\ninstance = 3\nowner_address = \"{RAW}\"\n"),
        Mode::Td,
    )
    .unwrap();
    assert_eq!(c.guest_cid(), 6);
    assert_eq!(c.host_port(), 8446);
    assert_eq!(
        c.state_dir(Mode::Td),
        PathBuf::from("/var/lib/cocoon-host/instance-3")
    );
    assert_eq!(
        c.state_dir(Mode::Dev),
        PathBuf::from("/tmp/cocoon-host/dev-3")
    );
}

#[test]
fn full_config_parses() {
    let text = format!(
        r#"
image_dir = "/srv/cocoon/image"
firmware = "/srv/cocoon/OVMF.fd"
gpus = ["0000:17:00.0", "65:00.0"]
vcpus = 32
memory_mib = 262144
hugepages = true
model_disk = "/srv/models/qwen.raw"
owner_address = "{FRIENDLY}"
instance = 1
qemu = "qemu-system-x86_64"
state_dir = "/run/cocoon/1"
serial_log = "/var/log/cocoon/1.log"
mmio64_mib = 524288
gpu_admin_tools = "/opt/gpu-admin-tools/nvidia_gpu_tools.py"

[data_disk]
path = "/srv/cocoon/data-1.raw"
size_gib = 64

[pricing]
nanoton_per_token = 25
worker_share_percent = 90
proxy_share_percent = 10

[ports]
agent_port = 8443
host_port = 9443
host_address = "127.0.0.1"

[quote_generation]
type = "unix"
path = "/var/run/tdx-qgs/qgs.socket"

[restart]
initial_backoff_ms = 500
max_backoff_ms = 30000
fast_failure_secs = 30
max_fast_failures = 3
on_guest_exit = "stop"
stop_timeout_secs = 20

[dev]
swtpm = "/usr/bin/swtpm"
swtpm_setup = "/usr/bin/swtpm_setup"
"#
    );
    let c = parse(&text, Mode::Td).unwrap();
    assert_eq!(c.gpus.len(), 2);
    assert_eq!(c.gpus[1].to_string(), "0000:65:00.0");
    assert_eq!(
        c.qemu,
        PathBuf::from("qemu-system-x86_64"),
        "bare program names stay bare"
    );
    assert_eq!(c.host_port(), 9443);
    assert_eq!(c.restart.on_guest_exit, OnGuestExit::Stop);
    assert_eq!(
        c.quote_generation,
        QuoteGeneration::Unix {
            path: "/var/run/tdx-qgs/qgs.socket".into()
        }
    );
    assert_eq!(c.data_disk.unwrap().size_gib, Some(64));
}

#[test]
fn unknown_field_is_a_syntax_error_naming_it() {
    let err = parse("image_dir = \"/i\"\ngpu = [\"0000:17:00.0\"]\n", Mode::Dev).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Syntax { .. }));
    assert!(msg.contains("unknown field `gpu`"), "{msg}");
    let err = parse("image_dir = \"/i\"\n[restart]\nbackoff = 1\n", Mode::Dev).unwrap_err();
    assert!(err.to_string().contains("unknown field `backoff`"), "{err}");
}

#[test]
fn bad_bdf_names_the_format() {
    let err = parse("image_dir = \"/i\"\ngpus = [\"17:00\"]\n", Mode::Dev).unwrap_err();
    assert!(err.to_string().contains("not a PCI address"), "{err}");
}

#[test]
fn every_problem_is_reported_with_field_and_fix() {
    let text = r#"
image_dir = "/i"
gpus = ["0000:17:00.0", "0000:17:00.0"]
vcpus = 0
memory_mib = 100
instance = 100
[pricing]
nanoton_per_token = 0
worker_share_percent = 95
proxy_share_percent = 10
[ports]
host_address = "localhost"
[restart]
max_fast_failures = 0
"#;
    let p = problems(text, Mode::Td);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "gpus",
            "vcpus",
            "memory_mib",
            "owner_address",
            "pricing.nanoton_per_token",
            "pricing.worker_share_percent",
            "ports.host_address",
            "instance",
            "restart.max_fast_failures"
        ]
    );
    assert!(p.iter().all(|p| !p.fix.is_empty()));
}

#[test]
fn owner_address_is_optional_only_in_dev_mode() {
    assert!(parse("image_dir = \"/i\"\n", Mode::Dev).is_ok());
    let p = problems("image_dir = \"/i\"\n", Mode::Td);
    assert_eq!(p[0].field, "owner_address");
}

#[test]
fn owner_address_crc_and_forms() {
    assert_eq!(validate_owner_address(FRIENDLY).unwrap(), RAW);
    assert_eq!(validate_owner_address(RAW).unwrap(), RAW);
    // One changed character breaks the CRC16 of the user-friendly form.
    let tampered = FRIENDLY.replace("Qi6u", "Qi6v");
    let err = validate_owner_address(&tampered).unwrap_err();
    assert!(err.to_string().contains("CRC"), "{err}");
    assert!(validate_owner_address("0:e4d9").is_err());
    assert!(matches!(
        validate_owner_address(&RAW.replacen('0', "5", 1)),
        Err(AddressError::Workchain { workchain: 5, .. })
    ));
    let p = problems(
        &format!("image_dir = \"/i\"\nowner_address = \"{tampered}\"\n"),
        Mode::Dev,
    );
    assert_eq!(p[0].field, "owner_address");
}

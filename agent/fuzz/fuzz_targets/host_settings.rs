#![no_main]
// The host's settings file (fw_cfg opt/cocoon/worker.toml) is written by the untrusted
// host. Merged into the image's config it must give a config that parses and
// validates, or a named error; never a panic, and never a change outside
// owner_address and [pricing].
use cocoon_agent::config::{merge_host_settings, parse};
use libfuzzer_sys::fuzz_target;

const BASE: &str = r#"# image config
listen = "0.0.0.0:8443"
owner_address = "EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N"

[tee]
kind = "sim"

[tee.sim]
pki_dir = "/etc/cocoon/sim-pki"
registers_file = "/usr/share/cocoon/sim-registers.json"

[engine]
kind = "none"

[pricing]
nanoton_per_token = 20
worker_share_bps = 9500
proxy_share_bps = 500

[host_settings]
path = "/sys/firmware/qemu_fw_cfg/by_name/opt/cocoon/worker.toml/raw"
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(host) = std::str::from_utf8(data) else {
        return;
    };
    let base = parse(BASE).expect("the base config is valid");
    match merge_host_settings(BASE, host, std::path::Path::new("worker.toml")) {
        Ok((merged, _instance)) => {
            let c = match parse(&merged) {
                Ok(c) => c,
                Err(e) => {
                    // Values were checked before merging; only a (checked) address or
                    // price may make the result differ, and it must still parse.
                    panic!("merged config refused: {e}\n{merged}");
                }
            };
            assert_eq!(c.listen, base.listen);
            assert_eq!(c.tee.kind, base.tee.kind);
            assert_eq!(c.engine.kind, base.engine.kind);
            assert_eq!(c.data_dir, base.data_dir);
        }
        Err(e) => {
            assert_eq!(e.field(), "host_settings");
            let _ = e.to_string();
        }
    }
});

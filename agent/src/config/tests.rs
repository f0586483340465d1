use super::*;

const MINIMAL: &str = r#"
owner_address = "EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N"
[tee]
kind = "sim"
[tee.sim]
pki_dir = "/etc/cocoon/sim-pki"
registers_file = "/usr/share/cocoon/sim-registers.json"
[engine]
kind = "none"
"#;

fn err_of(text: &str) -> ConfigError {
    parse(text).expect_err("config should be refused")
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/cocoon"));
    assert_eq!(c.engine.port, 8000);
    assert_eq!(c.limits.max_body_bytes, 1 << 20);
    assert_eq!(
        c.tee.sim.unwrap().tpm_event_log,
        PathBuf::from("/sys/kernel/security/tpm0/binary_bios_measurements")
    );
}

#[test]
fn unknown_key_in_nested_table_names_its_path() {
    let e = err_of(&format!(
        "{MINIMAL}\n[engine.restart]\ninitial_backoff = 5\n"
    ));
    assert_eq!(e.field(), "engine.restart.initial_backoff", "{e}");
}

#[test]
fn wrong_type_names_the_key() {
    let text = MINIMAL.replace("kind = \"none\"", "kind = \"none\"\nport = \"eighty\"");
    let e = err_of(&text);
    assert_eq!(e.field(), "engine.port", "{e}");
}

#[test]
fn bad_enum_value_names_the_key() {
    let e = err_of(&MINIMAL.replace("kind = \"sim\"", "kind = \"sev\""));
    assert_eq!(e.field(), "tee.kind", "{e}");
}

#[test]
fn missing_required_key_names_it() {
    let e = err_of(&MINIMAL.replace("kind = \"none\"", "port = 9000"));
    assert_eq!(e.field(), "engine.kind", "{e}");
    let e = err_of(&MINIMAL.replace(
        "owner_address = \"EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N\"",
        "",
    ));
    assert_eq!(e.field(), "owner_address", "{e}");
}

#[test]
fn unknown_top_level_key_is_refused() {
    let e = err_of(&format!("listen_port = 1\n{MINIMAL}"));
    assert_eq!(e.field(), "listen_port", "{e}");
}

#[test]
fn bad_listen_address_names_listen() {
    let e = err_of(&format!("listen = \"nowhere\"\n{MINIMAL}"));
    assert_eq!(e.field(), "listen", "{e}");
}

#[test]
fn sim_without_section_is_refused() {
    let text = MINIMAL
        .replace("[tee.sim]", "")
        .replace("pki_dir = \"/etc/cocoon/sim-pki\"", "")
        .replace(
            "registers_file = \"/usr/share/cocoon/sim-registers.json\"",
            "",
        );
    assert_eq!(err_of(&text).field(), "tee.sim");
}

#[test]
fn vllm_requires_model_and_name() {
    let text = MINIMAL.replace("kind = \"none\"", "kind = \"vllm\"");
    assert_eq!(err_of(&text).field(), "engine.model_dir");
    let text = MINIMAL.replace("kind = \"none\"", "kind = \"vllm\"\nmodel_dir = \"/m\"");
    assert_eq!(err_of(&text).field(), "engine.served_model_name");
}

#[test]
fn reserved_engine_env_is_refused() {
    let text = format!("{MINIMAL}\n[engine.env]\nVLLM_USE_V2_MODEL_RUNNER = \"1\"\n");
    let e = err_of(&text);
    assert_eq!(e.field(), "engine.env");
    assert!(e.to_string().contains("VLLM_USE_V2_MODEL_RUNNER"), "{e}");
}

#[test]
fn known_answer_digest_must_be_hex() {
    let text =
        format!("{MINIMAL}\n[engine.known_answer]\nprompt = \"hi\"\nexpected_sha256 = \"xyz\"\n");
    assert_eq!(err_of(&text).field(), "engine.known_answer.expected_sha256");
}

#[test]
fn zero_limits_are_refused() {
    let text = format!("{MINIMAL}\n[limits]\nmax_concurrent_requests = 0\n");
    assert_eq!(err_of(&text).field(), "limits.max_concurrent_requests");
}

#[test]
fn syntax_error_reports_a_location() {
    let e = err_of("owner_address = \n");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn config_digest_is_sha256_of_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("agent.toml");
    std::fs::write(&p, MINIMAL).unwrap();
    let loaded = load(&p).unwrap();
    use sha2::Digest as _;
    let want: [u8; 32] = sha2::Sha256::digest(MINIMAL.as_bytes()).into();
    assert_eq!(loaded.sha256(), want);
}

#[test]
fn owner_address_with_a_bad_checksum_is_refused() {
    // Last character changed: the CRC16 no longer matches.
    let text = MINIMAL.replace(
        "EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N",
        "EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2M",
    );
    assert_eq!(err_of(&text).field(), "owner_address");
    let raw = MINIMAL.replace(
        "EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N",
        "0:83dfd552e63729b472fcbcc8c45ebcc6691702558b68ec7527e1ba403a0f31a8",
    );
    parse(&raw).unwrap();
}

#[test]
fn pricing_shares_must_sum_to_the_whole() {
    let text = format!("{MINIMAL}\n[pricing]\nworker_share_bps = 9000\n");
    assert_eq!(err_of(&text).field(), "pricing");
}

/// The host's file exactly as `cocoon-host` writes it (`worker_toml_text`).
const HOST_FILE: &str =
    "# Written by cocoon-host; reaches the guest as fw_cfg opt/cocoon/worker.toml.
instance = 3
owner_address = \"0:abababababababababababababababababababababababababababababababab\"

[pricing]
nanoton_per_token = 25
worker_share_bps = 9000
proxy_share_bps = 1000
";

/// A config file with `host_settings` pointing into `dir`, and a comment that must survive.
fn with_host_settings(dir: &Path, required: bool) -> (PathBuf, PathBuf) {
    let host = dir.join("worker.toml");
    let text = format!(
        "# image config: the comment stays\n{MINIMAL}\n[pricing]\nnanoton_per_token = 20\n\
         worker_share_bps = 9500\nproxy_share_bps = 500\n\n[host_settings]\npath = {:?}\nrequired = {required}\n",
        host.display().to_string()
    );
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, text).unwrap();
    (cfg, host)
}

#[test]
fn host_settings_replace_owner_and_pricing_and_are_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, host) = with_host_settings(dir.path(), true);
    let before = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&host, HOST_FILE).unwrap();
    let loaded = load(&cfg).unwrap();
    assert_eq!(
        loaded.host,
        Some(HostOutcome::Applied { instance: Some(3) })
    );
    assert_eq!(
        loaded.config.owner_address,
        "0:abababababababababababababababababababababababababababababababab"
    );
    assert_eq!(
        loaded.config.pricing,
        Pricing {
            nanoton_per_token: 25,
            worker_share_bps: 9000,
            proxy_share_bps: 1000
        }
    );
    // What is measured and served is the merged text, and it parses to the same config.
    assert_ne!(loaded.text, before);
    assert!(loaded
        .text
        .starts_with("# image config: the comment stays\n"));
    assert!(loaded
        .text
        .contains("# host_settings: owner_address, pricing set from"));
    let reparsed = parse(&loaded.text).unwrap();
    assert_eq!(reparsed.pricing, loaded.config.pricing);
    assert_eq!(reparsed.owner_address, loaded.config.owner_address);
    use sha2::Digest as _;
    let want: [u8; 32] = sha2::Sha256::digest(loaded.text.as_bytes()).into();
    assert_eq!(loaded.sha256(), want);
    // Everything else is the image's, byte for byte.
    assert!(loaded
        .text
        .contains("[tee.sim]\npki_dir = \"/etc/cocoon/sim-pki\"\n"));
}

#[test]
fn host_settings_may_set_only_payout_and_price() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, host) = with_host_settings(dir.path(), true);
    for (extra, field) in [
        ("listen = \"0.0.0.0:1\"\n", "listen"),
        ("[engine]\nkind = \"none\"\n", "engine"),
        (
            "[pricing]\nworker_share_bps = 10000\nproxy_share_bps = 0\nfree = true\n",
            "pricing.free",
        ),
    ] {
        std::fs::write(&host, format!("instance = 0\n{extra}")).unwrap();
        let e = load(&cfg).expect_err(extra);
        assert_eq!(e.field(), "host_settings", "{e}");
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
    }
}

#[test]
fn host_settings_values_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, host) = with_host_settings(dir.path(), true);
    // One hex digit changed in a user-friendly address breaks its CRC.
    std::fs::write(
        &host,
        "owner_address = \"EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2M\"\n",
    )
    .unwrap();
    let e = load(&cfg).unwrap_err();
    assert!(e.to_string().contains("owner_address"), "{e}");
    std::fs::write(
        &host,
        "[pricing]\nnanoton_per_token = 1\nworker_share_bps = 9000\nproxy_share_bps = 500\n",
    )
    .unwrap();
    let e = load(&cfg).unwrap_err();
    assert!(e.to_string().contains("must equal 10000"), "{e}");
    std::fs::write(&host, vec![b'#'; 70 * 1024]).unwrap();
    let e = load(&cfg).unwrap_err();
    assert!(e.to_string().contains("larger than 65536 bytes"), "{e}");
    std::fs::write(&host, b"owner_address = \"\xff\"\n").unwrap();
    assert!(load(&cfg).unwrap_err().to_string().contains("not UTF-8"));
}

#[test]
fn missing_host_settings_fail_only_when_required() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _) = with_host_settings(dir.path(), true);
    let e = load(&cfg).unwrap_err();
    assert_eq!(e.field(), "host_settings");
    assert!(e.to_string().contains("qemu_fw_cfg"), "{e}");
    let (cfg, _) = with_host_settings(dir.path(), false);
    let loaded = load(&cfg).unwrap();
    assert_eq!(loaded.host, Some(HostOutcome::Missing));
    assert_eq!(loaded.text, std::fs::read_to_string(&cfg).unwrap());
    assert_eq!(loaded.config.pricing, Pricing::default());
}

#[test]
fn host_settings_without_values_change_nothing_but_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, host) = with_host_settings(dir.path(), false);
    std::fs::write(&host, "instance = 1\n").unwrap();
    let loaded = load(&cfg).unwrap();
    assert_eq!(
        loaded.host,
        Some(HostOutcome::Applied { instance: Some(1) })
    );
    assert_eq!(loaded.text, std::fs::read_to_string(&cfg).unwrap());
}

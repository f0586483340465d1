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

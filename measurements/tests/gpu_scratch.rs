mod common;
use cocoon_measurements::gpu::{certs, rim, spdm};

#[test]
fn scratch() {
    let hex_text = std::fs::read_to_string(common::testdata("nvidia/hopperAttestationReport.txt")).unwrap();
    let bytes = hex::decode(hex_text.trim()).unwrap();
    let r = spdm::AttestationReport::parse(&bytes).unwrap();
    println!("len {} blocks {} nonce {} driver {:?} vbios {:?} proj {:?} sku {:?} chip {:?}", bytes.len(), r.blocks.len(), hex::encode(r.request.nonce), r.driver_version(), r.vbios_version(), r.project(), r.project_sku(), r.chip_sku());
    for f in &r.opaque { println!("opaque {} len {} {}", f.kind, f.value.len(), hex::encode(&f.value[..f.value.len().min(16)])); }
    let chain = certs::parse_chain(&std::fs::read(common::testdata("nvidia/hopperCertChain.txt")).unwrap()).unwrap();
    let root = certs::parse_chain(&std::fs::read(common::testdata("nvidia/verifier_device_root.pem")).unwrap()).unwrap().remove(0);
    println!("chain {} issues {:?}", chain.len(), certs::verify_chain(&chain, &root, 1735689600));
    println!("sig ok {}", r.verify_signature(&chain[0].p384_key().unwrap()));
    println!("fwid {:?} vs {:?}", chain[0].fwid_sha384().map(|o| o.map(hex::encode)), r.fwid().map(hex::encode));
    let rimb = std::fs::read(common::testdata("nvidia/1010_0200_882_96005E0001_PROD.swidtag")).unwrap();
    let rim = rim::Rim::parse(&rimb).unwrap();
    let rroot = certs::parse_chain(&std::fs::read(common::testdata("nvidia/verifier_RIM_root.pem")).unwrap()).unwrap().remove(0);
    println!("rim {:?} {} {} active {}", rim.kind, rim.version, rim.measurements.len(), rim.active().count());
    println!("rim issues {:?}", rim.verify_signature(&rroot, 1735689600));
    println!("{}", String::from_utf8_lossy(&rim.signature.signed_info_c14n));
}

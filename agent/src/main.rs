fn main() {
    println!("cocoon-agent {}", env!("CARGO_PKG_VERSION"));
}

fn main() {
    println!("cocoon-host {}", env!("CARGO_PKG_VERSION"));
}

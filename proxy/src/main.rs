// jemalloc: per-thread caches without glibc's free-list consolidation on the request path
// (each request allocates and frees hyper's read buffers), and less fragmentation over a
// long-running process. Measured: ~2% proxy throughput at unchanged RSS.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    gatehouse::cli::main()
}

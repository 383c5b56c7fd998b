fn main() {
    pgvigil::run::<pgvigil::checks::checksums::Checksums>("check_pg_checksums")
}

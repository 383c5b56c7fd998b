fn main() {
    pgvigil::run::<pgvigil::checks::bloat::Bloat>("check_pg_bloat")
}

fn main() {
    pgvigil::run::<pgvigil::checks::log::Log>("check_pg_log")
}

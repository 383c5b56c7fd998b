fn main() {
    pgvigil::run::<pgvigil::checks::settings::Settings>("check_pg_settings")
}

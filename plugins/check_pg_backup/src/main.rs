fn main() {
    pgvigil::run::<pgvigil::checks::backup::Backup>("check_pg_backup")
}

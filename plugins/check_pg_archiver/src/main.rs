fn main() {
    pgvigil::run::<pgvigil::checks::archiver::Archiver>("check_pg_archiver")
}

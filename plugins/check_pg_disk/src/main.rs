fn main() {
    pgvigil::run::<pgvigil::checks::disk::Disk>("check_pg_disk")
}

fn main() {
    pgvigil::run::<pgvigil::checks::replication_slots::ReplicationSlots>(
        "check_pg_replication_slots",
    )
}

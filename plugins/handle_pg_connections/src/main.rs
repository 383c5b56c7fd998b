fn main() {
    pgvigil::handlers::connections::main()
}

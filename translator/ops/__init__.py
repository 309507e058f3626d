"""Operations: metrics in the Prometheus text format and a health endpoint."""

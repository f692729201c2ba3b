-- tsstats database schema: the one definition of the tables, applied on every open.
-- Readings are stored at their sensors' precision as scaled integers (bit-packed by DuckDB):
--   *_pm   per mille (0.1 %)            *_c    hundredths          *_mw   milliwatts
--   *_mj   millijoules in the interval  *_us   microseconds        *_ms   milliseconds / epoch ms
-- Samples have no primary key or index; they are inserted in time order so zone maps prune ranges.

CREATE TABLE IF NOT EXISTS schema_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per sampler tick.
CREATE TABLE IF NOT EXISTS samples (
    ts_ms        BIGINT NOT NULL,    -- wall clock, epoch ms, never decreasing
    interval_ms  INTEGER NOT NULL,   -- monotonic time since the previous tick
    cpu_pm       SMALLINT,           -- share of all logical CPUs busy
    mem_pm       SMALLINT,           -- (total - available) / total memory
    load1_c      INTEGER,            -- 1-minute load average x 100
    logical_cpus SMALLINT,
    tcp_estab    INTEGER,            -- TCP connections ESTABLISHED
    rx_bytes     BIGINT,             -- bytes received in the interval, loopback excluded
    tx_bytes     BIGINT,             -- bytes sent in the interval, loopback excluded
    gpu_pm       SMALLINT,           -- mean GPU utilization over all GPUs; NULL without GPU
    latency_us   INTEGER,            -- median round trip of the latest network probe
    cpu_mw       INTEGER,            -- CPU package power
    gpu_mw       INTEGER,            -- all GPUs' power
    mem_mw       INTEGER,            -- memory power
    cpu_mj       INTEGER,            -- CPU energy in the interval
    gpu_mj       INTEGER,            -- GPU energy in the interval
    gpu_idle_mj  INTEGER,            -- GPU energy in the interval at the GPUs' idle floor
    mem_mj       INTEGER,            -- memory energy in the interval
    methods      UTINYINT            -- bit 0: CPU by RAPL; bit 1: GPU energy counter; bit 2: GPU power;
                                     -- bit 3: memory by RAPL dram
);

-- One row per GPU per tick.
CREATE TABLE IF NOT EXISTS gpu_samples (
    ts_ms       BIGINT NOT NULL,
    gpu         UTINYINT NOT NULL,
    util_pm     SMALLINT,
    mem_used_mb INTEGER,
    power_mw    INTEGER,
    energy_mj   INTEGER,
    temp_c      SMALLINT
);

-- Gaps in sampling longer than two sample intervals (service down, machine asleep).
CREATE TABLE IF NOT EXISTS outages (
    start_ms BIGINT NOT NULL,
    end_ms   BIGINT NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS comparison_ids START 1;
CREATE TABLE IF NOT EXISTS comparisons (
    id          BIGINT PRIMARY KEY DEFAULT nextval('comparison_ids'),
    name        VARCHAR NOT NULL,
    models      VARCHAR[] NOT NULL,
    status      VARCHAR NOT NULL,
    created_ms  BIGINT NOT NULL,
    started_ms  BIGINT,
    finished_ms BIGINT,
    accuracy    DOUBLE,
    speed       DOUBLE,
    error       VARCHAR,
    metadata    VARCHAR NOT NULL DEFAULT '{}',
    energy_kwh  DOUBLE,
    carbon_kg   DOUBLE
);

CREATE SEQUENCE IF NOT EXISTS offset_ids START 1;
CREATE TABLE IF NOT EXISTS offsets (
    id         BIGINT PRIMARY KEY DEFAULT nextval('offset_ids'),
    kg         DOUBLE NOT NULL,
    note       VARCHAR NOT NULL DEFAULT '',
    at_ms      BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- tsstats database schema: the one definition of the tables, applied on every open.
-- Readings are stored at their sensors' precision as scaled integers (bit-packed by DuckDB):
--   *_pm   per mille (0.1 %)            *_c    hundredths          *_mw   milliwatts
--   *_mj   millijoules in the interval  *_us   microseconds        *_ms   milliseconds / epoch ms
-- Host power is not stored apart from energy: it is the interval's energy over its length (mJ / ms = W).
-- Samples have no primary key or index; they are inserted in time order so zone maps prune ranges.

CREATE TABLE IF NOT EXISTS schema_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per sampler tick. Memory, load, TCP and network are read once a second; the ticks between carry
-- the latest reading.
CREATE TABLE IF NOT EXISTS samples (
    ts_ms        BIGINT NOT NULL,    -- wall clock, epoch ms, never decreasing
    interval_ms  INTEGER NOT NULL,   -- monotonic time since the previous tick
    cpu_pm       SMALLINT,           -- share of all logical CPUs busy
    mem_pm       SMALLINT,           -- (total - available) / total memory
    load1_c      INTEGER,            -- 1-minute load average x 100
    logical_cpus SMALLINT,
    tcp_estab    INTEGER,            -- TCP connections ESTABLISHED
    rx_bps       BIGINT,             -- bytes received per second over the last second, loopback excluded
    tx_bps       BIGINT,             -- bytes sent per second over the last second, loopback excluded
    gpu_pm       SMALLINT,           -- mean GPU utilization over all GPUs; NULL without GPU
    latency_us   INTEGER,            -- median round trip of the latest network probe
    cpu_mj       INTEGER,            -- CPU energy in the interval (power is energy / interval)
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
    power_mw    INTEGER,             -- NVML power reading
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
-- schema version 2: the mean model response time the comparison runner measured, in ms
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS latency_ms DOUBLE;
-- schema version 3: the processes doing a comparison's work (with them its energy is attributed from their
-- share of CPU time, GPU use and resident memory; without, shared equally among the comparisons running),
-- which GPU share was used ('utilization' or 'memory'), and the joules given so far (before PUE) with their
-- sum of joules x g/kWh, kept while it runs
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS pids BIGINT[];
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS gpu_share VARCHAR;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS attributed_cpu_j DOUBLE;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS attributed_gpu_j DOUBLE;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS attributed_mem_j DOUBLE;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS attributed_jg DOUBLE;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS machine_kwh DOUBLE;
-- schema version 4: the items a run processed (prompts, images, tokens: the functional unit of SCI), the
-- embodied carbon amortised over it (g CO2e, the M of SCI), and how its figures were obtained (JSON: the method
-- of each component, the estimated ones, the grid intensity used); named windows inside a run
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS items DOUBLE;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS embodied_g DOUBLE;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS accounting VARCHAR;

CREATE SEQUENCE IF NOT EXISTS phase_ids START 1;
CREATE TABLE IF NOT EXISTS phases (
    id            BIGINT PRIMARY KEY DEFAULT nextval('phase_ids'),
    comparison_id BIGINT NOT NULL,
    parent_id     BIGINT,
    name          VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,
    started_ms    BIGINT NOT NULL,
    finished_ms   BIGINT,
    energy_j      DOUBLE,
    carbon_g      DOUBLE
);

-- schema version 3: grid carbon intensity over time, from grid_intensity_file ('file') or POST /api/grid
-- ('feed'); each row in force over [start_ms, end_ms), rows never overlap
CREATE TABLE IF NOT EXISTS grid_intensity (
    start_ms      BIGINT NOT NULL,
    end_ms        BIGINT NOT NULL,
    g_per_kwh     DOUBLE NOT NULL,
    renewable_pct DOUBLE NOT NULL,
    source        VARCHAR NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS offset_ids START 1;
CREATE TABLE IF NOT EXISTS offsets (
    id         BIGINT PRIMARY KEY DEFAULT nextval('offset_ids'),
    kg         DOUBLE NOT NULL,
    note       VARCHAR NOT NULL DEFAULT '',
    at_ms      BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Rollups: one row per closed bucket, written by the sampler when the bucket closes (1-minute rows from
-- samples, 1-hour rows from 1-minute rows) and rebuilt from the finer tier after a restart or a crash.
-- Per metric: min, max, sum and count of the non-missing values, and the last value. Metrics added after
-- schema version 4 get their columns from the catalog (storage.rollups.missing_column_statements).

-- 1m buckets of samples
CREATE TABLE IF NOT EXISTS rollup_1m (
    bucket_ms BIGINT NOT NULL,
    samples INTEGER NOT NULL,
    cpu_j DOUBLE,
    cpu_active_j DOUBLE,
    gpu_j DOUBLE,
    gpu_idle_j DOUBLE,
    mem_j DOUBLE,
    covered_s DOUBLE,
    cpu_min DOUBLE, cpu_max DOUBLE, cpu_sum DOUBLE, cpu_n INTEGER, cpu_last DOUBLE,  -- cpuUsage
    mem_min DOUBLE, mem_max DOUBLE, mem_sum DOUBLE, mem_n INTEGER, mem_last DOUBLE,  -- memoryUsage
    load_min DOUBLE, load_max DOUBLE, load_sum DOUBLE, load_n INTEGER, load_last DOUBLE,  -- systemLoad
    tcp_min DOUBLE, tcp_max DOUBLE, tcp_sum DOUBLE, tcp_n INTEGER, tcp_last DOUBLE,  -- activeConnections
    lat_min DOUBLE, lat_max DOUBLE, lat_sum DOUBLE, lat_n INTEGER, lat_last DOUBLE,  -- networkLatency
    rx_min DOUBLE, rx_max DOUBLE, rx_sum DOUBLE, rx_n INTEGER, rx_last DOUBLE,  -- networkReceive
    tx_min DOUBLE, tx_max DOUBLE, tx_sum DOUBLE, tx_n INTEGER, tx_last DOUBLE,  -- networkTransmit
    gpu_min DOUBLE, gpu_max DOUBLE, gpu_sum DOUBLE, gpu_n INTEGER, gpu_last DOUBLE,  -- gpuUsage
    pcpu_min DOUBLE, pcpu_max DOUBLE, pcpu_sum DOUBLE, pcpu_n INTEGER, pcpu_last DOUBLE,  -- cpuPower
    pgpu_min DOUBLE, pgpu_max DOUBLE, pgpu_sum DOUBLE, pgpu_n INTEGER, pgpu_last DOUBLE,  -- gpuPower
    pmem_min DOUBLE, pmem_max DOUBLE, pmem_sum DOUBLE, pmem_n INTEGER, pmem_last DOUBLE,  -- memoryPower
    ptot_min DOUBLE, ptot_max DOUBLE, ptot_sum DOUBLE, ptot_n INTEGER, ptot_last DOUBLE   -- power
);

-- 1h buckets of samples
CREATE TABLE IF NOT EXISTS rollup_1h (
    bucket_ms BIGINT NOT NULL,
    samples INTEGER NOT NULL,
    cpu_j DOUBLE,
    cpu_active_j DOUBLE,
    gpu_j DOUBLE,
    gpu_idle_j DOUBLE,
    mem_j DOUBLE,
    covered_s DOUBLE,
    cpu_min DOUBLE, cpu_max DOUBLE, cpu_sum DOUBLE, cpu_n INTEGER, cpu_last DOUBLE,  -- cpuUsage
    mem_min DOUBLE, mem_max DOUBLE, mem_sum DOUBLE, mem_n INTEGER, mem_last DOUBLE,  -- memoryUsage
    load_min DOUBLE, load_max DOUBLE, load_sum DOUBLE, load_n INTEGER, load_last DOUBLE,  -- systemLoad
    tcp_min DOUBLE, tcp_max DOUBLE, tcp_sum DOUBLE, tcp_n INTEGER, tcp_last DOUBLE,  -- activeConnections
    lat_min DOUBLE, lat_max DOUBLE, lat_sum DOUBLE, lat_n INTEGER, lat_last DOUBLE,  -- networkLatency
    rx_min DOUBLE, rx_max DOUBLE, rx_sum DOUBLE, rx_n INTEGER, rx_last DOUBLE,  -- networkReceive
    tx_min DOUBLE, tx_max DOUBLE, tx_sum DOUBLE, tx_n INTEGER, tx_last DOUBLE,  -- networkTransmit
    gpu_min DOUBLE, gpu_max DOUBLE, gpu_sum DOUBLE, gpu_n INTEGER, gpu_last DOUBLE,  -- gpuUsage
    pcpu_min DOUBLE, pcpu_max DOUBLE, pcpu_sum DOUBLE, pcpu_n INTEGER, pcpu_last DOUBLE,  -- cpuPower
    pgpu_min DOUBLE, pgpu_max DOUBLE, pgpu_sum DOUBLE, pgpu_n INTEGER, pgpu_last DOUBLE,  -- gpuPower
    pmem_min DOUBLE, pmem_max DOUBLE, pmem_sum DOUBLE, pmem_n INTEGER, pmem_last DOUBLE,  -- memoryPower
    ptot_min DOUBLE, ptot_max DOUBLE, ptot_sum DOUBLE, ptot_n INTEGER, ptot_last DOUBLE   -- power
);

-- 1m buckets of gpu_samples
CREATE TABLE IF NOT EXISTS gpu_rollup_1m (
    bucket_ms BIGINT NOT NULL,
    gpu UTINYINT NOT NULL,
    samples INTEGER NOT NULL,
    util_min DOUBLE, util_max DOUBLE, util_sum DOUBLE, util_n INTEGER, util_last DOUBLE,  -- gpuNUsage
    memused_min DOUBLE, memused_max DOUBLE, memused_sum DOUBLE, memused_n INTEGER, memused_last DOUBLE,  -- gpuNMemoryUsed
    power_min DOUBLE, power_max DOUBLE, power_sum DOUBLE, power_n INTEGER, power_last DOUBLE,  -- gpuNPower
    temp_min DOUBLE, temp_max DOUBLE, temp_sum DOUBLE, temp_n INTEGER, temp_last DOUBLE   -- gpuNTemperature
);

-- 1h buckets of gpu_samples
CREATE TABLE IF NOT EXISTS gpu_rollup_1h (
    bucket_ms BIGINT NOT NULL,
    gpu UTINYINT NOT NULL,
    samples INTEGER NOT NULL,
    util_min DOUBLE, util_max DOUBLE, util_sum DOUBLE, util_n INTEGER, util_last DOUBLE,  -- gpuNUsage
    memused_min DOUBLE, memused_max DOUBLE, memused_sum DOUBLE, memused_n INTEGER, memused_last DOUBLE,  -- gpuNMemoryUsed
    power_min DOUBLE, power_max DOUBLE, power_sum DOUBLE, power_n INTEGER, power_last DOUBLE,  -- gpuNPower
    temp_min DOUBLE, temp_max DOUBLE, temp_sum DOUBLE, temp_n INTEGER, temp_last DOUBLE   -- gpuNTemperature
);
-- schema version 5: a closed phase's conditions, as its run's
ALTER TABLE phases ADD COLUMN IF NOT EXISTS conditions VARCHAR;
ALTER TABLE phases ADD COLUMN IF NOT EXISTS fair BOOLEAN;
-- schema version 5: a finished run's conditions (JSON: {"conditions", "unfairReasons"}) and whether it was fair
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS conditions VARCHAR;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS fair BOOLEAN;
-- schema version 5: each GPU's clocks, fan and throttle reasons (NVML's bit mask), read once a second
ALTER TABLE gpu_samples ADD COLUMN IF NOT EXISTS sm_clock_mhz INTEGER;
ALTER TABLE gpu_samples ADD COLUMN IF NOT EXISTS memory_clock_mhz INTEGER;
ALTER TABLE gpu_samples ADD COLUMN IF NOT EXISTS fan_pct SMALLINT;
ALTER TABLE gpu_samples ADD COLUMN IF NOT EXISTS throttle_mask INTEGER;
-- schema version 5: the conditions of the last second, read once a second (docs/conditions.md)
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_user_pm SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_system_pm SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_iowait_pm SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_steal_pm SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS psi_cpu_c SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS psi_memory_c SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS psi_io_c SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS swap_used_mb INTEGER;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS swap_in_bps BIGINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS swap_out_bps BIGINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS disk_read_bps BIGINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS disk_write_bps BIGINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS disk_read_ops_c INTEGER;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS disk_write_ops_c INTEGER;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS fs_used_pm SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_temp_dc SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_core_temp_dc SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_freq_mhz INTEGER;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_freq_min_mhz INTEGER;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_freq_pm SMALLINT;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_throttle_c INTEGER;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_core_max_pm SMALLINT;
-- schema version 6: who ended a run ('client': its own report; 'service': its processes exited and nobody
-- reported within report_grace_s) and when its processes were all seen gone (its measured window ends there)
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS ended_by VARCHAR;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS exited_ms BIGINT;
-- schema version 6: per model, kept by each write of a comparison in the same transaction (never by a scan):
-- its runs by status now, and counters that only grow: the runs that reached a final status and their energy
-- (J after PUE; a verdict replaced later counts once, a deleted record leaves them as they were); and when the
-- model was last active (a run created or ended), which decides the models /metrics shows
CREATE TABLE IF NOT EXISTS model_counters (
    model          VARCHAR PRIMARY KEY,
    queued         BIGINT NOT NULL DEFAULT 0,
    running        BIGINT NOT NULL DEFAULT 0,
    completed      BIGINT NOT NULL DEFAULT 0,
    failed         BIGINT NOT NULL DEFAULT 0,
    cancelled      BIGINT NOT NULL DEFAULT 0,
    finished_total BIGINT NOT NULL DEFAULT 0,
    energy_j_total DOUBLE NOT NULL DEFAULT 0,
    active_ms      BIGINT NOT NULL,
    -- schema version 7: the items of those runs and their carbon (g CO2e), counted from the upgrade on, so that
    -- Prometheus divides energy by items (a lab's energy per item per model)
    items_total    DOUBLE NOT NULL DEFAULT 0,
    carbon_g_total DOUBLE NOT NULL DEFAULT 0
);

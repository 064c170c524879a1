using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

using Lockstep.Backends.Managed.Kernels;

namespace Lockstep.Bench;

/// <summary>What the benchmarks ran on: the CPU's model and vector ISA, and its measured peak.</summary>
public static class MachineInfo
{
    private static readonly Lazy<(string Model, string[] Flags)> CpuInfo = new(ReadCpuInfo);

    /// <summary>The CPU's model name from /proc/cpuinfo ("unknown" elsewhere).</summary>
    public static string CpuModel => CpuInfo.Value.Model;

    public static int LogicalCores => Environment.ProcessorCount;

    /// <summary>The vector extensions that matter for GEMM, e.g. "avx512f avx2 fma" (from /proc/cpuinfo's flags,
    /// else from what the runtime reports).</summary>
    public static string Isa
    {
        get
        {
            string[] wanted = ["avx512f", "avx2", "fma", "neon", "asimd"];
            string[] flags = CpuInfo.Value.Flags;
            var found = flags.Length > 0
                ? wanted.Where(w => flags.Contains(w, StringComparer.Ordinal))
                : RuntimeIsa();
            string isa = string.Join(' ', found);
            return isa.Length == 0 ? "no AVX2/AVX-512" : isa;
        }
    }

    /// <summary>The 1-minute load average from /proc/loadavg; null where unknown.</summary>
    public static double? LoadAverage
    {
        get
        {
            try
            {
                if (!File.Exists("/proc/loadavg")) return null;
                string first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
                return double.TryParse(first, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) ? v : null;
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    /// <summary>The environment variables that change the native libraries' speed, as set for this process.</summary>
    public static IReadOnlyDictionary<string, string> PerformanceEnvironment =>
        Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => (Key: (string)e.Key, Value: e.Value as string ?? ""))
            .Where(e => e.Key == "GLIBC_TUNABLES" || e.Key.StartsWith("OPENBLAS_", StringComparison.Ordinal) || e.Key.StartsWith("MKL_", StringComparison.Ordinal)
                        || e.Key.StartsWith("OMP_", StringComparison.Ordinal) || e.Key.StartsWith("KMP_", StringComparison.Ordinal))
            .OrderBy(e => e.Key, StringComparer.Ordinal)
            .ToDictionary(e => e.Key, e => e.Value);

    /// <summary>"AMD EPYC 9B14, avx512f avx2 fma".</summary>
    public static string CpuSummary => $"{CpuModel}, {Isa}";

    private static IEnumerable<string> RuntimeIsa()
    {
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) yield return "avx512f";
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) yield return "avx2";
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported) yield return "fma";
        if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported) yield return "neon";
    }

    private static (string, string[]) ReadCpuInfo()
    {
        const string path = "/proc/cpuinfo";
        string model = "unknown CPU";
        string[] flags = [];
        try
        {
            if (!File.Exists(path)) return (model, flags);
            foreach (string line in File.ReadLines(path))
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon < 0) continue;
                string key = line[..colon].Trim();
                string value = line[(colon + 1)..].Trim();
                if (key == "model name" && model == "unknown CPU") model = value;
                else if (key is "flags" or "Features" && flags.Length == 0) flags = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (model != "unknown CPU" && flags.Length > 0) break;
            }
        }
        catch (IOException)
        {
            // Diagnostic only: an unreadable /proc leaves "unknown".
        }
        catch (UnauthorizedAccessException)
        {
        }
        return (model, flags);
    }

    /// <summary>
    /// The machine's peak in GFLOP/s for <paramref name="dtype"/>: one dedicated thread per core runs 12 independent
    /// fused multiply-add chains on the widest hardware vector, held in registers, for about <paramref name="duration"/>
    /// per round; the best of five rounds counts. The loop is jitted fully optimised and run once untimed first, so
    /// that no round times tier-0 code (PERF-NOTES pitfall 2). Null where the runtime has no hardware FMA to measure.
    /// </summary>
    public static double? MeasurePeakGflops(DType dtype, int threads, TimeSpan duration)
    {
        // Without hardware FMA the loop would measure a software fallback, not the machine.
        if (!Vector256.IsHardwareAccelerated || !System.Runtime.Intrinsics.X86.Fma.IsSupported) return null;
        threads = Math.Max(1, threads);
        bool wide = Vector512.IsHardwareAccelerated;
        // An x86 FMA instruction has the same throughput on float and double lanes: each lane does 2 FLOP.
        int lanes = (wide ? 64 : 32) / (dtype == DType.Float64 ? 8 : 4);
        Chains(wide, 256);   // jit and warm the loop before any timed round
        double best = 0;
        for (int round = 0; round < 5; round++)
        {
            long iterations = 0;
            using var start = new Barrier(threads + 1);
            var workers = new Thread[threads];
            var perRound = duration / 5;
            for (int t = 0; t < threads; t++)
            {
                workers[t] = new Thread(() =>
                {
                    start.SignalAndWait();
                    long n = 0;
                    var clock = Stopwatch.StartNew();
                    do
                    {
                        Chains(wide, Inner);
                        n += Inner;
                    }
                    while (clock.Elapsed < perRound);
                    Interlocked.Add(ref iterations, n);
                }) { IsBackground = true, Name = "peak-probe" };
                workers[t].Start();
            }
            start.SignalAndWait();
            var wall = Stopwatch.StartNew();
            foreach (var worker in workers) worker.Join();
            double flops = (double)iterations * Accumulators * lanes * 2;
            best = Math.Max(best, flops / wall.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    private const int Accumulators = 12, Inner = 1 << 14;

    // float lanes; a float64 FMA has the same throughput per instruction, which `lanes` accounts for.
    private static void Chains(bool wide, int n) => Sink(wide ? Run<Lanes512<float>>(n) : Run<Lanes256<float>>(n));

    // 12 chains hide the FMA latency (4 cycles on 2 pipes needs ≥ 8 in flight); each is a local, so the JIT keeps it in
    // a register. x·a + b with a < 1 converges to b / (1 − a): no overflow, no denormals. One loop for both widths, over
    // the managed kernels' width structs (Kernels/VectorLanes.cs): the JIT compiles it once per struct, inlined.
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float Run<TLanes>(int n) where TLanes : struct, IVectorLanes<TLanes, float>
    {
        var a = TLanes.Create(0.999999f);
        var b = TLanes.Create(1e-7f);
        TLanes a0 = TLanes.Create(1f), a1 = TLanes.Add(a0, a0), a2 = TLanes.Add(a1, a0), a3 = TLanes.Add(a2, a0);
        TLanes a4 = TLanes.Add(a3, a0), a5 = TLanes.Add(a4, a0), a6 = TLanes.Add(a5, a0), a7 = TLanes.Add(a6, a0);
        TLanes a8 = TLanes.Add(a7, a0), a9 = TLanes.Add(a8, a0), a10 = TLanes.Add(a9, a0), a11 = TLanes.Add(a10, a0);
        for (int i = 0; i < n; i++)
        {
            a0 = TLanes.Fma(a0, a, b); a1 = TLanes.Fma(a1, a, b); a2 = TLanes.Fma(a2, a, b); a3 = TLanes.Fma(a3, a, b);
            a4 = TLanes.Fma(a4, a, b); a5 = TLanes.Fma(a5, a, b); a6 = TLanes.Fma(a6, a, b); a7 = TLanes.Fma(a7, a, b);
            a8 = TLanes.Fma(a8, a, b); a9 = TLanes.Fma(a9, a, b); a10 = TLanes.Fma(a10, a, b); a11 = TLanes.Fma(a11, a, b);
        }
        var sum = TLanes.Add(TLanes.Add(TLanes.Add(a0, a1), TLanes.Add(a2, a3)), TLanes.Add(TLanes.Add(a4, a5), TLanes.Add(a6, a7)));
        sum = TLanes.Add(sum, TLanes.Add(TLanes.Add(a8, a9), TLanes.Add(a10, a11)));
        float total = 0;
        for (int k = 0; k < TLanes.Count; k++) total += TLanes.Element(sum, k);
        return total;
    }

    // Keeps the result observable, so that the loop cannot be removed.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Sink(float value) => GC.KeepAlive(value);
}

using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
    private static void Chains(bool wide, int n) => Sink(wide ? Run<Lanes512>(n) : Run<Lanes256>(n));

    // 12 chains hide the FMA latency (4 cycles on 2 pipes needs ≥ 8 in flight); each is a local, so the JIT keeps it in
    // a register. x·a + b with a < 1 converges to b / (1 − a): no overflow, no denormals. One loop for both widths: the
    // JIT compiles it once per vector struct, with the struct's operations inlined (TensorPrimitives' pattern).
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float Run<TVector>(int n) where TVector : struct, IFmaLanes<TVector>
    {
        var a = TVector.Create(0.999999f);
        var b = TVector.Create(1e-7f);
        TVector a0 = TVector.Create(1f), a1 = TVector.Add(a0, a0), a2 = TVector.Add(a1, a0), a3 = TVector.Add(a2, a0);
        TVector a4 = TVector.Add(a3, a0), a5 = TVector.Add(a4, a0), a6 = TVector.Add(a5, a0), a7 = TVector.Add(a6, a0);
        TVector a8 = TVector.Add(a7, a0), a9 = TVector.Add(a8, a0), a10 = TVector.Add(a9, a0), a11 = TVector.Add(a10, a0);
        for (int i = 0; i < n; i++)
        {
            a0 = TVector.Fma(a0, a, b); a1 = TVector.Fma(a1, a, b); a2 = TVector.Fma(a2, a, b); a3 = TVector.Fma(a3, a, b);
            a4 = TVector.Fma(a4, a, b); a5 = TVector.Fma(a5, a, b); a6 = TVector.Fma(a6, a, b); a7 = TVector.Fma(a7, a, b);
            a8 = TVector.Fma(a8, a, b); a9 = TVector.Fma(a9, a, b); a10 = TVector.Fma(a10, a, b); a11 = TVector.Fma(a11, a, b);
        }
        var sum = TVector.Add(TVector.Add(TVector.Add(a0, a1), TVector.Add(a2, a3)), TVector.Add(TVector.Add(a4, a5), TVector.Add(a6, a7)));
        return TVector.Sum(TVector.Add(sum, TVector.Add(TVector.Add(a8, a9), TVector.Add(a10, a11))));
    }

    /// <summary>The few vector operations the peak loop needs, for one hardware width.</summary>
    private interface IFmaLanes<TSelf> where TSelf : struct
    {
        static abstract TSelf Create(float value);
        static abstract TSelf Add(TSelf x, TSelf y);
        static abstract TSelf Fma(TSelf x, TSelf y, TSelf addend);
        static abstract float Sum(TSelf x);
    }

    private readonly struct Lanes512(Vector512<float> v) : IFmaLanes<Lanes512>
    {
        private readonly Vector512<float> _v = v;
        public static Lanes512 Create(float value) => new(Vector512.Create(value));
        public static Lanes512 Add(Lanes512 x, Lanes512 y) => new(x._v + y._v);
        public static Lanes512 Fma(Lanes512 x, Lanes512 y, Lanes512 addend) => new(Vector512.FusedMultiplyAdd(x._v, y._v, addend._v));
        public static float Sum(Lanes512 x) => Vector512.Sum(x._v);
    }

    private readonly struct Lanes256(Vector256<float> v) : IFmaLanes<Lanes256>
    {
        private readonly Vector256<float> _v = v;
        public static Lanes256 Create(float value) => new(Vector256.Create(value));
        public static Lanes256 Add(Lanes256 x, Lanes256 y) => new(x._v + y._v);
        public static Lanes256 Fma(Lanes256 x, Lanes256 y, Lanes256 addend) => new(Vector256.FusedMultiplyAdd(x._v, y._v, addend._v));
        public static float Sum(Lanes256 x) => Vector256.Sum(x._v);
    }

    // Keeps the result observable, so that the loop cannot be removed.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Sink(float value) => GC.KeepAlive(value);
}

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
    /// The machine's peak in GFLOP/s for <paramref name="dtype"/>: every thread runs independent fused multiply-add
    /// chains on the widest hardware vector for about <paramref name="duration"/>, and the best of five rounds counts.
    /// Null where the runtime has no hardware FMA to measure.
    /// </summary>
    public static double? MeasurePeakGflops(DType dtype, int threads, TimeSpan duration)
    {
        // Without hardware FMA the loop would measure a software fallback, not the machine.
        if (!Vector256.IsHardwareAccelerated || !System.Runtime.Intrinsics.X86.Fma.IsSupported) return null;
        threads = Math.Max(1, threads);
        // An x86 FMA instruction has the same throughput on float and double lanes: float32 does twice the work.
        int laneBytes = dtype == DType.Float64 ? 8 : 4;
        double best = 0;
        for (int round = 0; round < 5; round++)
        {
            long instructions = 0;
            int vectorBytes = 0;
            var clock = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                var (count, bytes) = FmaLoop(duration / 5);
                Interlocked.Add(ref instructions, count);
                vectorBytes = bytes;
            });
            double flops = (double)instructions * (vectorBytes / laneBytes) * 2;
            best = Math.Max(best, flops / clock.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    // Runs FMA instructions on the widest vector for about `duration`; returns how many and the vector width.
    // 12 independent chains hide the FMA latency (4 cycles on 2 ports); the accumulators end in a sink so that
    // the loop cannot be removed.
    private static (long Instructions, int VectorBytes) FmaLoop(TimeSpan duration)
    {
        const int Chains = 12, Inner = 4096;
        bool wide = Vector512.IsHardwareAccelerated;
        Span<Vector512<double>> acc = stackalloc Vector512<double>[Chains];
        for (int c = 0; c < Chains; c++) acc[c] = Vector512.Create((double)c);
        long iterations = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            if (wide) Run512(acc, Inner);
            else Run256(acc, Inner);
            iterations += Inner;
        }
        while (clock.Elapsed < duration);
        Sink(acc[0]);
        return (iterations * Chains, wide ? 64 : 32);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run512(Span<Vector512<double>> acc, int n)
    {
        var a = Vector512.Create(0.999999);
        var b = Vector512.Create(1e-7);
        var (a0, a1, a2, a3, a4, a5) = (acc[0], acc[1], acc[2], acc[3], acc[4], acc[5]);
        var (a6, a7, a8, a9, a10, a11) = (acc[6], acc[7], acc[8], acc[9], acc[10], acc[11]);
        for (int i = 0; i < n; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, a, b); a1 = Vector512.FusedMultiplyAdd(a1, a, b);
            a2 = Vector512.FusedMultiplyAdd(a2, a, b); a3 = Vector512.FusedMultiplyAdd(a3, a, b);
            a4 = Vector512.FusedMultiplyAdd(a4, a, b); a5 = Vector512.FusedMultiplyAdd(a5, a, b);
            a6 = Vector512.FusedMultiplyAdd(a6, a, b); a7 = Vector512.FusedMultiplyAdd(a7, a, b);
            a8 = Vector512.FusedMultiplyAdd(a8, a, b); a9 = Vector512.FusedMultiplyAdd(a9, a, b);
            a10 = Vector512.FusedMultiplyAdd(a10, a, b); a11 = Vector512.FusedMultiplyAdd(a11, a, b);
        }
        (acc[0], acc[1], acc[2], acc[3], acc[4], acc[5]) = (a0, a1, a2, a3, a4, a5);
        (acc[6], acc[7], acc[8], acc[9], acc[10], acc[11]) = (a6, a7, a8, a9, a10, a11);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run256(Span<Vector512<double>> acc, int n)
    {
        var a = Vector256.Create(0.999999);
        var b = Vector256.Create(1e-7);
        var (a0, a1, a2, a3, a4, a5) = (acc[0].GetLower(), acc[1].GetLower(), acc[2].GetLower(), acc[3].GetLower(), acc[4].GetLower(), acc[5].GetLower());
        var (a6, a7, a8, a9, a10, a11) = (acc[6].GetLower(), acc[7].GetLower(), acc[8].GetLower(), acc[9].GetLower(), acc[10].GetLower(), acc[11].GetLower());
        for (int i = 0; i < n; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, a, b); a1 = Vector256.FusedMultiplyAdd(a1, a, b);
            a2 = Vector256.FusedMultiplyAdd(a2, a, b); a3 = Vector256.FusedMultiplyAdd(a3, a, b);
            a4 = Vector256.FusedMultiplyAdd(a4, a, b); a5 = Vector256.FusedMultiplyAdd(a5, a, b);
            a6 = Vector256.FusedMultiplyAdd(a6, a, b); a7 = Vector256.FusedMultiplyAdd(a7, a, b);
            a8 = Vector256.FusedMultiplyAdd(a8, a, b); a9 = Vector256.FusedMultiplyAdd(a9, a, b);
            a10 = Vector256.FusedMultiplyAdd(a10, a, b); a11 = Vector256.FusedMultiplyAdd(a11, a, b);
        }
        acc[0] = Vector512.Create(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11, Vector256<double>.Zero);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Sink(Vector512<double> value) => GC.KeepAlive(value);
}

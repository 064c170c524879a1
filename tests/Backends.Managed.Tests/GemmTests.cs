using Lockstep.Backends.Managed.Gemm;
using Xunit.Abstractions;

namespace Lockstep.Tests;

public sealed class GemmTests(ITestOutputHelper output)
{
    /// <summary>Every provider this environment has installed: each must load and multiply correctly.</summary>
    public static IEnumerable<object[]> InstalledProviders() =>
        new[] { "mkl", "openblas", "managed" }.Where(InstalledLibraries.Has).Select(name => new object[] { name });

    public static IEnumerable<object[]> ProductCases() =>
        from name in new[] { "mkl", "openblas", "managed" }.Where(InstalledLibraries.Has)
        from transA in new[] { false, true }
        from transB in new[] { false, true }
        select new object[] { name, transA, transB };

    private static IGemmProvider Load(string name) => GemmProviders.Select(name, 1).Provider;

    // C = alpha·op(A)·op(B) + beta·C, row-major, from the definition
    private static double[] Naive(bool transA, bool transB, int m, int n, int k, double alpha, double[] a, int lda,
        double[] b, int ldb, double beta, double[] c, int ldc)
    {
        var result = (double[])c.Clone();
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int p = 0; p < k; p++) sum += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
            result[i * ldc + j] = alpha * sum + beta * c[i * ldc + j];
        }
        return result;
    }

    [Theory, MemberData(nameof(ProductCases))]
    public void Gemm_MatchesNaiveProduct(string provider, bool transA, bool transB)
    {
        using var gemm = Load(provider);
        const int m = 7, n = 5, k = 9;
        // Leading dimensions wider than the rows, to check that strides are honoured.
        int lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 2, ldc = n + 1;
        int aRows = transA ? k : m, bRows = transB ? n : k;
        double[] a = TestSupport.RoundToSingle(TestSupport.Random(aRows * lda, 71));
        double[] b = TestSupport.RoundToSingle(TestSupport.Random(bRows * ldb, 72));
        double[] c = TestSupport.RoundToSingle(TestSupport.Random(m * ldc, 73));
        const double alpha = 1.5, beta = -0.5;
        double[] expected = Naive(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

        var cd = (double[])c.Clone();
        gemm.Dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cd, ldc);
        TestSupport.Close(cd, expected, 1e-14, $"{provider} dgemm transA={transA} transB={transB}");

        float[] cs = Array.ConvertAll(c, v => (float)v);
        gemm.Sgemm(transA, transB, m, n, k, (float)alpha, Array.ConvertAll(a, v => (float)v), lda,
            Array.ConvertAll(b, v => (float)v), ldb, (float)beta, cs, ldc);
        TestSupport.Close(Array.ConvertAll(cs, v => (double)v), expected, 1e-5, $"{provider} sgemm transA={transA} transB={transB}");
    }

    [Theory, MemberData(nameof(InstalledProviders))]
    public void Gemm_BetaZeroIgnoresNaNInC(string provider)
    {
        using var gemm = Load(provider);
        double[] c = [double.NaN, double.NaN, double.NaN, double.NaN];
        gemm.Dgemm(false, false, 2, 2, 1, 1, [1, 2], 1, [3, 4], 2, 0, c, 2);
        Assert.Equal([3.0, 4, 6, 8], c);
    }

    [Theory, MemberData(nameof(InstalledProviders))]
    public void Gemm_InstalledProviderLoadsAndNamesItsVersion(string provider)
    {
        using var gemm = Load(provider);
        output.WriteLine($"{gemm.Name} {gemm.Version}: {gemm.Details}");
        Assert.Equal(provider, gemm.Name);
        Assert.Matches(@"^\d+\.\d+", gemm.Version);
        Assert.Equal(1, gemm.Threads);
    }

    [Fact]
    public void Mkl_LoadsWhereInstalled()
    {
        // The build environment (./build.sh) installs libmkl-rt: there MKL must load. Elsewhere the explicit name must
        // fail loudly, with the install instructions, and never fall back.
        if (InstalledLibraries.Has("mkl"))
        {
            using var gemm = Load("mkl");
            output.WriteLine(gemm.Details);
            Assert.Equal("mkl", gemm.Name);
        }
        else
        {
            var e = Assert.Throws<GemmProviderException>(() => Load("mkl"));
            Assert.Contains("apt-get install libmkl-rt libomp-dev", e.Message);
        }
    }

    [Fact]
    public void Mkl_ThrowsForMissingLibraryNamingWhatWasTried()
    {
        var e = Assert.Throws<GemmProviderException>(() => new MklGemmProvider(1, ["/nonexistent/libmkl_rt.so", "libmkl_rt_nope.so.9"]));
        Assert.Contains("gemm provider 'mkl' could not be loaded", e.Message);
        Assert.Contains("/nonexistent/libmkl_rt.so: ", e.Message);
        Assert.Contains("libmkl_rt_nope.so.9: ", e.Message);
        Assert.Contains("apt-get install libmkl-rt libomp-dev", e.Message);
        Assert.Contains("./build.sh", e.Message);
    }

    [Fact]
    public void Mkl_ThrowsForMissingOpenMpRuntime()
    {
        // Needs a loadable libmkl_rt to get that far, and no threading layer chosen by the environment.
        if (!InstalledLibraries.Has("mkl") || Environment.GetEnvironmentVariable("MKL_THREADING_LAYER") is { Length: > 0 }) return;
        var e = Assert.Throws<GemmProviderException>(() => new MklGemmProvider(1, openMpCandidates: ["/nonexistent/libiomp5.so"]));
        Assert.Contains("libiomp5", e.Message);
    }

    [Fact]
    public void OpenBlas_ThrowsForMissingLibraryNamingWhatWasTried()
    {
        var e = Assert.Throws<GemmProviderException>(() => new OpenBlasGemmProvider(1, ["/nonexistent/libopenblas.so.0"]));
        Assert.Contains("gemm provider 'openblas' could not be loaded", e.Message);
        Assert.Contains("/nonexistent/libopenblas.so.0: ", e.Message);
        Assert.Contains("apt-get install libopenblas0-pthread", e.Message);
    }

    [Fact]
    public void OpenBlas_LoadsWhereInstalled()
    {
        if (InstalledLibraries.Has("openblas"))
        {
            using var gemm = Load("openblas");
            output.WriteLine(gemm.Details);
        }
        else
        {
            var e = Assert.Throws<GemmProviderException>(() => Load("openblas"));
            Assert.Contains("libopenblas0-pthread", e.Message);
        }
    }

    [Fact]
    public void Auto_KeepsTheFastestNativeProviderAndSaysWhy()
    {
        // Measurement is replaced by fixed scores (tests never time): openblas "wins" wherever both load.
        string cache = Path.Combine(Path.GetTempPath(), $"lockstep-gemm-auto-{Guid.NewGuid():N}.json");
        try
        {
            var auto = new GemmAuto(cache, (p, _) => p.Name == "openblas" ? 400 : 200, () => 0);
            var selection = GemmProviders.Select("auto", 1, 2, auto);
            using var provider = selection.Provider;
            output.WriteLine($"{selection.Reason} → {provider.Name} {provider.Version}");
            bool mkl = InstalledLibraries.Has("mkl"), openblas = InstalledLibraries.Has("openblas");
            string expected = openblas ? "openblas" : mkl ? "mkl" : "managed";
            Assert.Equal(expected, provider.Name);
            Assert.StartsWith("auto", selection.Reason);
            if (mkl && openblas)
            {
                Assert.Contains("openblas fastest on conv-shaped sgemm, GFLOP/s at 2 threads: openblas", selection.Reason);
                Assert.Contains("measured now", selection.Reason);
            }
            else
            {
                Assert.Contains("not loadable (", selection.Reason);
            }
        }
        finally
        {
            File.Delete(cache);
        }
    }

    [Fact]
    public void Auto_MeasuresOnceAndReadsTheVerdictFromTheCache()
    {
        string cache = Path.Combine(Path.GetTempPath(), $"lockstep-gemm-auto-{Guid.NewGuid():N}.json");
        try
        {
            int measured = 0;
            var first = new GemmAuto(cache, (p, _) => { measured++; return p.Name == "b" ? 300 : 100; }, () => 0);
            var chosen = first.Choose([new NamedProvider("a", "1"), new NamedProvider("b", "2")], 2);
            Assert.Equal("b", chosen.Provider.Name);
            Assert.Equal(6, measured);   // three alternating rounds per candidate
            Assert.True(File.Exists(cache));

            var second = new GemmAuto(cache, (_, _) => throw new InvalidOperationException("the cached verdict should have been used"), () => 0);
            var again = second.Choose([new NamedProvider("a", "1"), new NamedProvider("b", "2")], 2);
            Assert.Equal("b", again.Provider.Name);
            Assert.Contains($"cached in {cache}", again.Reason);
            Assert.Contains("b 2 300, a 1 100", again.Reason);

            // Another library version is another key: measured again.
            var third = new GemmAuto(cache, (p, _) => { measured++; return p.Name == "a" ? 500 : 100; }, () => 0);
            Assert.Equal("a", third.Choose([new NamedProvider("a", "1.1"), new NamedProvider("b", "2")], 2).Provider.Name);
            Assert.Equal(12, measured);
        }
        finally
        {
            File.Delete(cache);
        }
    }

    [Fact]
    public void Auto_MeasuresAgainAVerdictTakenUnderLoadOnceTheMachineIsQuieter()
    {
        string cache = Path.Combine(Path.GetTempPath(), $"lockstep-gemm-auto-{Guid.NewGuid():N}.json");
        try
        {
            int measured = 0;
            double busy = 4.0 * Environment.ProcessorCount;
            new GemmAuto(cache, (p, _) => { measured++; return p.Name == "a" ? 300 : 100; }, () => busy)
                .Choose([new NamedProvider("a", "1"), new NamedProvider("b", "2")], 1);
            new GemmAuto(cache, (p, _) => { measured++; return p.Name == "a" ? 300 : 100; }, () => busy)
                .Choose([new NamedProvider("a", "1"), new NamedProvider("b", "2")], 1);
            Assert.Equal(6, measured);   // as busy as before: the verdict stands
            var quiet = new GemmAuto(cache, (p, _) => { measured++; return p.Name == "b" ? 300 : 100; }, () => 0.1)
                .Choose([new NamedProvider("a", "1"), new NamedProvider("b", "2")], 1);
            Assert.Equal(12, measured);
            Assert.Equal("b", quiet.Provider.Name);
        }
        finally
        {
            File.Delete(cache);
        }
    }

    [Fact]
    public void AutoKey_NamesCpuLibrariesThreadsAndKernelEnvironment()
    {
        string key = GemmAuto.Key([new NamedProvider("a", "1"), new NamedProvider("b", "2")], 2);
        Assert.Contains("cpu=", key);
        Assert.Contains("parallelism=2", key);
        Assert.Contains("a=1 [a details] threads=1", key);
        Assert.Contains("OPENBLAS_CORETYPE=", key);
        Assert.Contains("OPENBLAS_L2_SIZE=", key);
    }

    /// <summary>A provider that only has a name and a version, for auto's bookkeeping.</summary>
    private sealed class NamedProvider(string name, string version) : IGemmProvider
    {
        public string Name => name;
        public string Version => version;
        public string Details => $"{name} details";
        public int Threads => 1;
        public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
            ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc) => throw new NotSupportedException();
        public void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
            ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc) => throw new NotSupportedException();
        public void Dispose() { }
    }

    public static IEnumerable<object[]> SplitCases() =>
        from shape in new[] { (40, 333, 97), (333, 40, 97) }
        from transA in new[] { false, true }
        from transB in new[] { false, true }
        select new object[] { shape.Item1, shape.Item2, shape.Item3, transA, transB };

    [Theory, MemberData(nameof(SplitCases))]
    public void ParallelGemm_SplitAcrossWorkersMatchesOneProduct(int m, int n, int k, bool transA, bool transB)
    {
        // Large enough to be split (by columns when n ≥ m, else by rows), with padded leading dimensions.
        string name = InstalledLibraries.Has("openblas") ? "openblas" : InstalledLibraries.Has("mkl") ? "mkl" : "managed";
        using var workers = new Lockstep.Backends.Managed.Threading.WorkerPool(3);
        var split = new Lockstep.Backends.Managed.Threading.ParallelGemm(Load(name), workers);
        int lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 2, ldc = n + 1;
        double[] a = TestSupport.Random((transA ? k : m) * lda, 91), b = TestSupport.Random((transB ? n : k) * ldb, 92);
        double[] c = TestSupport.Random(m * ldc, 93);
        double[] expected = Naive(transA, transB, m, n, k, 0.5, a, lda, b, ldb, 2, c, ldc);
        split.Dgemm(transA, transB, m, n, k, 0.5, a, lda, b, ldb, 2, c, ldc);
        TestSupport.Close(c, expected, 1e-13, $"{name} split over 3 workers, {m}×{n}×{k} transA={transA} transB={transB}");
    }

    [Fact]
    public void Gemm_ThrowsForLeadingDimensionTooSmall()
    {
        using var gemm = new ManagedGemmProvider(1);
        var e = Assert.Throws<ArgumentException>(() => gemm.Dgemm(false, false, 2, 2, 3, 1, new double[6], 2, new double[6], 2, 0, new double[4], 2));
        Assert.Contains("lda = 2 is less than the row length", e.Message);
    }

    [Fact]
    public void Gemm_ThrowsForSpanTooShort()
    {
        using var gemm = new ManagedGemmProvider(1);
        var e = Assert.Throws<ArgumentException>(() => gemm.Sgemm(false, true, 2, 3, 4, 1, new float[8], 4, new float[11], 4, 0, new float[6], 3));
        Assert.Contains("needs 12 elements, the span has 11", e.Message);
    }

    [Fact]
    public void Gemm_WithZeroInnerDimensionScalesC()
    {
        using var gemm = new ManagedGemmProvider(1);
        double[] c = [1, 2, 3, 4];
        gemm.Dgemm(false, false, 2, 2, 0, 1, [], 1, [], 2, 2, c, 2);
        Assert.Equal([2.0, 4, 6, 8], c);
    }

    [Fact]
    public void Mkl_ShortVersionReadsIntelsVersionString()
    {
        Assert.Equal("2020.4", MklGemmProvider.ShortVersion(
            "Intel(R) Math Kernel Library Version 2020.0.4 Product Build 20200917 for Intel(R) 64 architecture applications"));
        Assert.Equal("2024.2", MklGemmProvider.ShortVersion("Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605"));
    }
}

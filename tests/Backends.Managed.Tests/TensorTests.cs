using Lockstep.Backends.Managed.Tensors;
using Lockstep.Backends.Managed;
using Lockstep.Backends.Managed.Gemm;
using Lockstep.Configuration;

namespace Lockstep.Tests;

public sealed class TensorTests : IDisposable
{
    private readonly ManagedBackend _backend = new(new ManagedGemmProvider(1));

    public void Dispose() => _backend.Dispose();

    [Fact]
    public void Upload_RoundTripsEachDType()
    {
        using var f = _backend.Upload<float>([1.5f, -2f], new Shape(2));
        using var d = _backend.Upload<double>([1e-300, 3], new Shape(1, 2));
        using var l = _backend.Upload<long>([long.MaxValue], new Shape(1));
        Assert.Equal((DType.Float32, DType.Float64, DType.Int64), (f.DType, d.DType, l.DType));
        Assert.Equal([1.5f, -2f], f.ToArray<float>());
        Assert.Equal([1e-300, 3], d.ToArray<double>());
        Assert.Equal([long.MaxValue], l.ToArray<long>());
        Assert.Same(_backend, f.Backend);
    }

    [Fact]
    public void Upload_ThrowsForLengthMismatch()
    {
        var e = Assert.Throws<ArgumentException>(() => _backend.Upload<float>([1f, 2f, 3f], new Shape(2, 2)));
        Assert.Contains("holds 4 elements, the data has 3", e.Message);
    }

    [Fact]
    public void Download_ThrowsForWrongElementType()
    {
        using var t = _backend.Zeros(new Shape(2), DType.Float32);
        Assert.Throws<ArgumentException>(() => _backend.Download<double>(t, new double[2]));
    }

    [Fact]
    public void Dispose_MarksDisposedAndOpsRefuseIt()
    {
        var t = _backend.Zeros(new Shape(3), DType.Float64);
        t.Dispose();
        t.Dispose();
        Assert.True(t.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => _backend.Relu(t));
        Assert.Throws<ObjectDisposedException>(() => _backend.Download<double>(t, new double[3]));
    }

    [Fact]
    public void Zeros_AreZeroEvenOnAReusedBuffer()
    {
        var dirty = _backend.Upload<double>([1, 2, 3, 4, 5], new Shape(5));
        dirty.Dispose();
        Assert.True(_backend.PooledBytes >= 40);
        using var zeros = _backend.Zeros(new Shape(5), DType.Float64);
        Assert.Equal(new double[5], zeros.ToArray<double>());
    }

    /// <summary>
    /// Data derived from a tensor (Winograd's transformed weights) is taken back only at the version it was made
    /// from and of the kind asked for: every writable access counts as a write, reads do not, and a stale, disposed
    /// or other kind of derived data goes back to the pool.
    /// </summary>
    [Fact]
    public void DerivedData_IsTakenBackOnlyUntilTheTensorIsWritten()
    {
        using var t = (ManagedTensor)_backend.Zeros(new Shape(4), DType.Float32);
        var derived = new float[8];
        long version = t.Version;
        t.OfferDerived(derived, version);
        _ = t.Read<float>();
        Assert.Equal(version, t.Version);
        Assert.Same(derived, t.TakeDerived<float>());
        Assert.Null(t.TakeDerived<float>());          // taken: the caller owns it now
        Assert.Null(t.TakeDerived<double>());

        var other = new float[8];
        t.OfferDerived(other, version, kind: 2);       // another layout of the same data
        Assert.Same(other, t.TakeDerived<float>(kind: 2));
        t.OfferDerived(other, version, kind: 2);
        Assert.Null(t.TakeDerived<float>(kind: 1));    // asked for another kind: dropped (back to the pool)
        Assert.Null(t.TakeDerived<float>(kind: 2));

        t.OfferDerived(derived, version);
        _ = t.Span<float>();                           // a write
        Assert.NotEqual(version, t.Version);
        Assert.Null(t.TakeDerived<float>());

        t.OfferDerived(new float[8], version);          // made from data that have changed since: not kept
        Assert.Null(t.TakeDerived<float>());
    }

    [Fact]
    public void Relu_ThrowsForAnotherBackendsTensor()
    {
        using var other = new ManagedBackend(new ManagedGemmProvider(1));
        using var t = other.Zeros(new Shape(2), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => _backend.Relu(t));
        Assert.Contains("belongs to backend", e.Message);
    }
}

public sealed class FactoryTests
{
    [Fact]
    public void Factory_CreatesTheNamedProviderWithItsThreads()
    {
        var options = new LockstepOptions { Managed = { Gemm = "managed", Threads = 1 } };
        var factory = new ManagedBackendFactory();
        using var backend = factory.Create(options);
        Assert.Equal("managed", factory.Name);
        Assert.Equal("managed", backend.Name);
        Assert.Matches(@"^managed \(gemm: managed \d+\.\d+\.\d+, 1 thread\)$", backend.Description);
    }

    [Fact]
    public void Factory_RegistersAsManaged()
    {
        var registry = new BackendRegistry().Register(new ManagedBackendFactory());
        using var backend = registry.Create(new LockstepOptions { Managed = { Gemm = "managed", Threads = 2 } });
        Assert.IsType<ManagedBackend>(backend);
        Assert.EndsWith("2 threads)", backend.Description);
    }

    [Fact]
    public void Factory_ZeroThreadsMeansAllCoresWithTheBlasAtOneThread()
    {
        using var backend = (ManagedBackend)new ManagedBackendFactory().Create(new LockstepOptions { Managed = { Gemm = "managed" } });
        Assert.Equal(Environment.ProcessorCount, backend.Threads);
        Assert.Equal(1, backend.Gemm.Threads);
    }

    [Fact]
    public void Backend_ThrowsForWorkersOverAMultithreadedBlas()
    {
        var e = Assert.Throws<ArgumentException>(() => new ManagedBackend(new ManagedGemmProvider(2), threads: 2));
        Assert.Contains("oversubscribe", e.Message);
    }

    [Fact]
    public void Factory_ThrowsForUnknownGemm()
    {
        var e = Assert.Throws<ArgumentException>(() => new ManagedBackendFactory().Create(new LockstepOptions { Managed = { Gemm = "cublas" } }));
        Assert.Contains("unknown GEMM provider 'cublas'", e.Message);
        Assert.Contains("auto, mkl, openblas, managed", e.Message);
    }

    [Fact]
    public void LiveBytes_CountsRentedArraysUntilDisposed_PeakIncludesIm2ColColumns()
    {
        using var backend = new ManagedBackend(new ManagedGemmProvider(1));
        long before = backend.LiveBytes;
        backend.ResetPeak();
        // 64 channels × 3×3 = 576 taps: past the direct kernel's limit, so im2col.
        using (var x = backend.Zeros(Shape.Nchw(1, 64, 5, 5), DType.Float64))
        using (var w = backend.Zeros(new Shape(3, 64, 3, 3), DType.Float64))
        {
            Assert.Equal(before + (1600 + 1728) * 8, backend.LiveBytes);
            var spec = ConvSpec.Square(3, 1, 1);
            using var y = backend.Conv2d(x, w, null, spec);
            long columns = ManagedBackend.ConvWorkspaceElements(x.Shape, spec, filters: 3, threads: 1);
            Assert.Equal(64 * 9 * 25, columns);
            Assert.Equal(before + (1600 + 1728 + 75) * 8, backend.LiveBytes);                // the columns went back
            Assert.Equal(before + (1600 + 1728 + 75 + columns) * 8, backend.PeakLiveBytes);  // but were held during the call
        }
        Assert.Equal(before, backend.LiveBytes);
    }
}

/// <summary>The huge-page advice on large pooled buffers (Tensors/HugePages.cs).</summary>
public sealed class HugePagesTests
{
    /// <summary>
    /// Linux takes the advice for an array of several huge pages (this project's kernels have THP; a refusal would mean
    /// the advice silently does nothing), the data is untouched by it, and arrays under two huge pages are not advised.
    /// </summary>
    [Fact]
    public void Advise_IsTakenForLargeArraysOnly_AndLeavesTheDataAlone()
    {
        var large = new float[3 << 20];   // 12 MB
        large[0] = 1;
        large[^1] = 2;
        Assert.Equal(OperatingSystem.IsLinux(), Lockstep.Backends.Managed.Tensors.HugePages.Advise(large));
        Assert.Equal((1f, 2f), (large[0], large[^1]));
        Assert.False(Lockstep.Backends.Managed.Tensors.HugePages.Advise(new float[1 << 18]));   // 1 MB
    }

    /// <summary>
    /// A cleared rent is all zeros whether the pool hands back a returned array or makes a new one (new large arrays are
    /// made uninitialised, advised, then cleared): first over memory the GC has just had back full of ones.
    /// </summary>
    [Fact]
    public void Rent_Cleared_IsZeroFreshAndReused()
    {
        for (int i = 0; i < 4; i++) Array.Fill(GC.AllocateUninitializedArray<float>(3 << 20), 1f);
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        var pool = new Lockstep.Backends.Managed.Tensors.BufferPool();
        var fresh = pool.Rent<float>(3 << 20, clear: true);
        Assert.True(Array.TrueForAll(fresh, v => v == 0f), "a new cleared array holds non-zeros");
        Array.Fill(fresh, 1f);
        pool.Return(fresh);
        var reused = pool.Rent<float>(3 << 20, clear: true);
        Assert.Same(fresh, reused);
        Assert.True(Array.TrueForAll(reused, v => v == 0f), "a returned array rented cleared holds non-zeros");
    }
}

using Lockstep.Configuration;

namespace Lockstep.Backends.Torch.Tests;

public class TorchTensorTests
{
    private static TorchBackend B => TorchTestSupport.Backend;

    [Fact]
    public void Upload_Float32RoundTripsBitwise()
    {
        float[] data = [1.5f, -0f, float.NaN, float.PositiveInfinity, float.Epsilon, 3.4e38f];
        using var t = B.Upload<float>(data, new Shape(2, 3));

        Assert.Equal(DType.Float32, t.DType);
        Assert.Equal(new Shape(2, 3), t.Shape);
        Assert.Same(B, t.Backend);
        Assert.Equal(data.Select(BitConverter.SingleToInt32Bits), t.ToArray<float>().Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Upload_Float64RoundTripsBitwise()
    {
        double[] data = [Math.PI, -0d, double.NaN, double.NegativeInfinity, double.Epsilon, 1e308, 7, 8];
        using var t = B.Upload<double>(data, new Shape(1, 2, 2, 2));

        Assert.Equal(DType.Float64, t.DType);
        Assert.Equal(data.Select(BitConverter.DoubleToInt64Bits), t.ToArray<double>().Select(BitConverter.DoubleToInt64Bits));
    }

    [Fact]
    public void Upload_Int64RoundTrips()
    {
        long[] data = [0, -1, long.MaxValue, long.MinValue];
        using var t = B.Upload<long>(data, new Shape(4));

        Assert.Equal(DType.Int64, t.DType);
        Assert.Equal(data, t.ToArray<long>());
    }

    [Fact]
    public void Upload_ThrowsForLengthMismatch()
    {
        var e = Assert.Throws<ArgumentException>(() => B.Upload<float>(new float[5], new Shape(2, 3)));

        Assert.Contains("holds 6 elements, the data has 5", e.Message);
    }

    [Fact]
    public void Download_ThrowsForDTypeMismatch()
    {
        using var t = B.Upload<float>(new float[4], new Shape(4));

        var e = Assert.Throws<ArgumentException>(() => B.Download<double>(t, new double[4]));

        Assert.Contains("the tensor is Float32, the destination holds Double", e.Message);
    }

    [Fact]
    public void Zeros_GivesZerosOfShapeAndDType()
    {
        using var t = B.Zeros(new Shape(2, 3, 4, 5), DType.Float64);

        Assert.Equal(new Shape(2, 3, 4, 5), t.Shape);
        Assert.Equal(DType.Float64, t.DType);
        Assert.All(t.ToArray<double>(), v => Assert.Equal(0, v));
    }

    [Fact]
    public void Dispose_MarksTensorDisposedAndOpsReject()
    {
        var t = B.Upload<float>(new float[4], new Shape(1, 1, 2, 2));
        t.Dispose();
        t.Dispose();

        Assert.True(t.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => B.Relu(t));
        Assert.Throws<ObjectDisposedException>(() => t.ToArray<float>());
    }

    [Fact]
    public void Ops_ThrowForTensorOfAnotherBackend()
    {
        // With the environment's settings: a backend's creation sets libtorch's process-wide flags (cuDNN, TF32, …).
        using var other = new TorchBackend(TorchTestSupport.Options.Torch);
        using var t = other.Upload<float>(new float[4], new Shape(1, 1, 2, 2));

        var e = Assert.Throws<ArgumentException>(() => B.Relu(t));

        Assert.Contains("belongs to backend", e.Message);
    }

    [Fact]
    public void Synchronize_ReturnsOnTheConfiguredDevice() => B.Synchronize();

    [Fact]
    public void LiveBytes_CountsTensorsUntilDisposed()
    {
        using var backend = new TorchBackend(TorchTestSupport.Options.Torch.WithDevice("cpu"));
        var a = backend.Zeros(new Shape(2, 3), DType.Float64);
        var b = backend.Upload<float>(new float[5], new Shape(5));
        Assert.Equal(6 * 8 + 5 * 4, backend.LiveBytes);
        a.Dispose();
        a.Dispose();   // twice: counted once
        Assert.Equal(5 * 4, backend.LiveBytes);
        Assert.Equal(6 * 8 + 5 * 4, backend.PeakLiveBytes);
        backend.ResetPeak();
        Assert.Equal(5 * 4, backend.PeakLiveBytes);
        b.Dispose();
        Assert.Equal(0, backend.LiveBytes);
    }
}

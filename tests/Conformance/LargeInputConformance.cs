using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// Allocations that cannot succeed fail up front, naming the layer and the size wanted — never a crash in a kernel.
/// Derive with one backend: <code>public sealed class MyLargeInput() : LargeInputConformance(new MyBackend());</code>
/// </summary>
public abstract class LargeInputConformance(IBackend backend) : IDisposable
{
    protected IBackend Backend { get; } = backend ?? throw new ArgumentNullException(nameof(backend));

    /// <summary>A 1×1 convolution with 300,000 filters on a 1024×1024 plane: a 1.2 TB output from 5 MB of inputs.</summary>
    [Fact]
    public void Conv2d_ThrowsUpFrontForAnImpossibleOutput()
    {
        using var x = Backend.Zeros(Shape.Nchw(1, 1, 1024, 1024), DType.Float32);
        using var w = Backend.Zeros(new Shape(300_000, 1, 1, 1), DType.Float32);
        var e = Assert.ThrowsAny<OutOfMemoryException>(() => Backend.Conv2d(x, w, null, ConvSpec.Square(1, name: "huge1")));
        Assert.Contains("huge1", e.Message, StringComparison.Ordinal);
        Assert.Contains("output", e.Message, StringComparison.Ordinal);
        // The backend is still usable afterwards.
        using var small = Backend.Zeros(Shape.Nchw(1, 1, 4, 4), DType.Float32);
        using var w1 = Backend.Zeros(new Shape(2, 1, 1, 1), DType.Float32);
        using var y = Backend.Conv2d(small, w1, null, ConvSpec.Square(1));
        Assert.Equal(Shape.Nchw(1, 2, 4, 4), y.Shape);
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Backend.Dispose();
    }
}

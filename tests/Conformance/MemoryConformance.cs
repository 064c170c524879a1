using Lockstep.Layers;
using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// Memory stays flat over repeated training steps: after warm-up, the bytes the backend's tensors hold
/// (<see cref="IMemoryStatistics"/>) are the same at every sample. The full soak (10,000 steps, RSS and the managed
/// heap too) is <c>lockstep soak</c>; this is its short, deterministic core for every test run.
/// Derive with one backend: <code>public sealed class MyMemory() : MemoryConformance(new MyBackend());</code>
/// </summary>
public abstract class MemoryConformance(IBackend backend) : IDisposable
{
    private const int Steps = 600;
    private const int Every = 100;
    private const int Warmup = 200;

    protected IBackend Backend { get; } = backend ?? throw new ArgumentNullException(nameof(backend));

    [Fact]
    public void TrainStep_LiveBytesStayFlatAfterWarmup()
    {
        var stats = Assert.IsAssignableFrom<IMemoryStatistics>(Backend);
        var def = NetworkSpec.Parse("INPUT 12x12x2 -> CONV3-4 -> RELU -> POOL2 -> AVGPOOL2/S1 -> FC-6 -> RELU -> FC-3", "flat");
        using var net = def.Build(Backend, DType.Float32, seed: 1);
        var shape = def.InputShape(4);
        using var x = Backend.Upload(HostData.Random(1, shape.Count), shape, DType.Float32);
        var labels = HostData.Labels(2, 4, def.Classes);
        var samples = new List<(int Step, long Bytes)>();
        for (int step = 1; step <= Steps; step++)
        {
            net.TrainStep(x, labels, learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4);
            if (step % Every == 0 && step >= Warmup) samples.Add((step, stats.LiveBytes));
        }
        Assert.True(samples.All(s => s.Bytes == samples[0].Bytes),
            $"{Backend.Name}: live bytes after warm-up: {string.Join(", ", samples.Select(s => $"step {s.Step}: {s.Bytes:N0}"))}");
        Assert.True(samples[0].Bytes > 0, $"{Backend.Name}: a network in training holds tensors, but live bytes read 0");
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

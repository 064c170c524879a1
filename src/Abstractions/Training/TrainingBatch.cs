using Lockstep.Layers;

namespace Lockstep.Training;

/// <summary>
/// One mini-batch's buffers for a network, reused from step to step: the images gathered on the host in the network's
/// dtype, their labels, the input tensor they are uploaded into, and the scores downloaded to count correct answers.
/// Made again only when the batch size changes, so that <see cref="Trainer.Step(Network, LabelledImages, ReadOnlySpan{int}, SgdSettings, TrainingBatch, string?)"/>
/// allocates nothing per step once warm (with a network on a backend whose destination ops are native).
/// </summary>
public sealed class TrainingBatch : IDisposable
{
    private float[] _singles = [];
    private double[] _doubles = [];
    private int[] _labels = [];
    private float[] _singleScores = [];
    private double[] _doubleScores = [];
    private ITensor? _input;

    /// <summary>The labels of the last <see cref="Load"/>.</summary>
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>Gathers the images at <paramref name="indices"/> and uploads them into the network's input tensor, which it returns.</summary>
    public ITensor Load(Network network, LabelledImages data, ReadOnlySpan<int> indices)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(data);
        int n = indices.Length, size = data.ImageSize;
        if (_input is null || _input.IsDisposed || _input.Shape.N != n || !ReferenceEquals(_input.Backend, network.Backend) || _input.DType != network.DType)
        {
            _input?.Dispose();
            _input = network.Backend.Zeros(network.Definition.InputShape(n), network.DType);
            _labels = new int[n];
            _singles = network.DType == DType.Float32 ? new float[(long)n * size] : [];
            _doubles = network.DType == DType.Float64 ? new double[(long)n * size] : [];
        }
        for (int i = 0; i < n; i++)
        {
            var image = data.Pixels.AsSpan(indices[i] * size, size);
            if (network.DType == DType.Float32)
            {
                var row = _singles.AsSpan(i * size, size);
                for (int j = 0; j < size; j++) row[j] = (float)image[j];
            }
            else
            {
                image.CopyTo(_doubles.AsSpan(i * size, size));
            }
            _labels[i] = data.Labels[indices[i]];
        }
        if (network.DType == DType.Float32) network.Backend.Upload<float>(_singles, _input);
        else network.Backend.Upload<double>(_doubles, _input);
        return _input;
    }

    /// <summary>How many rows of <paramref name="scores"/> [N, classes] have their largest score at the last loaded label.</summary>
    public int Correct(ITensor scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        int count = checked((int)scores.Shape.Count), classes = count / _labels.Length, correct = 0;
        if (scores.DType == DType.Float32)
        {
            if (_singleScores.Length != count) _singleScores = new float[count];
            scores.Backend.Download<float>(scores, _singleScores);
            for (int n = 0; n < _labels.Length; n++) correct += ArgMax<float>(_singleScores.AsSpan(n * classes, classes)) == _labels[n] ? 1 : 0;
        }
        else
        {
            if (_doubleScores.Length != count) _doubleScores = new double[count];
            scores.Backend.Download<double>(scores, _doubleScores);
            for (int n = 0; n < _labels.Length; n++) correct += ArgMax<double>(_doubleScores.AsSpan(n * classes, classes)) == _labels[n] ? 1 : 0;
        }
        return correct;
    }

    // The first largest score (ties go to the lower class, as the trainer always counted).
    private static int ArgMax<T>(ReadOnlySpan<T> row) where T : System.Numerics.INumber<T>
    {
        int best = 0;
        for (int c = 1; c < row.Length; c++) if (row[c] > row[best]) best = c;
        return best;
    }

    public void Dispose()
    {
        _input?.Dispose();
        _input = null;
    }
}

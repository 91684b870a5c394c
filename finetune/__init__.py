"""Fine-tuning tasks for the generator, the embedder and the sentiment classifier (docs/finetuning.md).

Each task module (``generator``, ``embedder``, ``sentiment``) holds its training code and its typer command
(``python -m finetune.<task>`` = ``supportbot finetune <task>``); ``cli`` builds those commands from the options
dataclasses, ``faq`` reads the FAQ inputs, ``model_card`` writes the model cards, ``_common`` holds the training
data pieces shared with the benchmarks."""
